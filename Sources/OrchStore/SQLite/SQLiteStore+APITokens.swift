import Foundation
import GRDB
import OrchModels

extension SQLiteStore {
    public func createAPIToken(_ token: APITokenRecord) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO api_tokens (id, user_id, name, role, digest, prefix, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    token.id, token.userID, token.name, token.role.rawValue, token.digest, token.prefix,
                    token.createdAt.millis, token.expiresAt?.millis,
                ])
        }
    }

    public func apiToken(digest: String) async throws -> APITokenRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE digest = ?", arguments: [digest])
                .map(Self.apiTokenRecord)
        }
    }

    public func apiToken(id: String) async throws -> APITokenRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE id = ?", arguments: [id]).map(Self.apiTokenRecord)
        }
    }

    public func listAPITokens(userID: String?) async throws -> [APITokenRecord] {
        try await read { db in
            let rows =
                if let userID {
                    try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id",
                        arguments: [userID])
                } else {
                    try Row.fetchAll(
                        db, sql: "SELECT * FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at DESC, id")
                }
            return rows.map(Self.apiTokenRecord)
        }
    }

    public func revokeAPIToken(id: String, at date: Date) async throws -> APITokenRecord? {
        try await write { db in
            try db.execute(
                sql: "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [date.millis, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE id = ?", arguments: [id])
                .map(Self.apiTokenRecord)
        }
    }

    public func touchAPIToken(id: String, at date: Date) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", arguments: [date.millis, id])
        }
    }

    static func apiTokenRecord(_ row: Row) -> APITokenRecord {
        APITokenRecord(
            id: row["id"], userID: row["user_id"], name: row["name"],
            role: Role(rawValue: row["role"]) ?? .viewer, digest: row["digest"], prefix: row["prefix"],
            createdAt: Date(millis: row["created_at"]),
            expiresAt: (row["expires_at"] as Int64?).map(Date.init(millis:)),
            lastUsedAt: (row["last_used_at"] as Int64?).map(Date.init(millis:)),
            revokedAt: (row["revoked_at"] as Int64?).map(Date.init(millis:)))
    }
}
