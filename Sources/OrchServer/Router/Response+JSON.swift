import Foundation
import Hummingbird
import NIOCore
import OrchModels

extension Response {
    /// A JSON response of `value` (written by ``JSONWriter``: dates as `Timestamp` says).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let bytes = try JSONWriter().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
