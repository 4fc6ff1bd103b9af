import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import OrchCore

/// The web dashboard under `/ui`: one page (`index.html`) for every path below it, so that
/// each view is deep-linkable (`/ui/tasks/{task_id}`), and its scripts and styles under
/// `/ui/assets/`. The files are compiled into the binary (SwiftPM's `embedInCode`), so
/// `swift run orch serve` and a copied release binary serve the same dashboard, with nothing
/// fetched from anywhere else. The page holds no data: it signs in with `POST /auth/login` and
/// reads the API with the token like any client, so these routes are public.
///
/// Every answer carries a Content-Security-Policy that allows scripts, styles and connections
/// from this server only, with no inline script or style, so that even markup smuggled into a
/// task's metadata could not run (the scripts also only ever set text, never HTML).
struct DashboardController {
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let frameOptions = HTTPField.Name("X-Frame-Options")!

    func addRoutes(to router: Router<OrchRequestContext>) {
        router.get("/ui") { request, _ in Self.answer(DashboardAssets.page, request) }
        router.get("/ui/**") { request, context in
            let path = context.parameters.getCatchAll()
            guard path.first == "assets" else { return Self.answer(DashboardAssets.page, request) }
            guard path.count == 2, let asset = DashboardAssets.files[String(path[1])] else {
                throw OrchError.notFound("No dashboard file \(path.dropFirst().joined(separator: "/"))")
            }
            return Self.answer(asset, request)
        }
    }

    /// The asset with its validators: a request whose `If-None-Match` names the current
    /// version gets 304. Browsers revalidate each time (`no-cache`), so a new binary's files are
    /// seen at once.
    static func answer(_ asset: DashboardAsset, _ request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: asset.contentType,
            .eTag: asset.etag,
            .cacheControl: "no-cache",
            .contentSecurityPolicy: contentSecurityPolicy,
            .xContentTypeOptions: "nosniff",
            Self.referrerPolicy: "no-referrer",
            Self.frameOptions: "DENY",
        ]
        if let tags = request.headers[.ifNoneMatch], tags.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == asset.etag
        }) {
            headers[.contentLength] = nil
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(asset.bytes.readableBytes)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.bytes))
    }
}

/// One dashboard file as served.
struct DashboardAsset: Sendable {
    let bytes: ByteBuffer
    let contentType: String
    /// A strong validator: the first 16 bytes of the file's SHA-256, in hex.
    let etag: String

    init(_ bytes: [UInt8], contentType: String) {
        self.bytes = ByteBuffer(bytes: bytes)
        self.contentType = contentType
        etag = "\"" + SHA256.hash(data: bytes).prefix(16).map { String(format: "%02x", $0) }.joined() + "\""
    }
}

/// The files of `Sources/OrchServer/Dashboard/Assets`, as SwiftPM embeds them.
enum DashboardAssets {
    static let page = DashboardAsset(PackageResources.index_html, contentType: "text/html; charset=utf-8")
    static let files: [String: DashboardAsset] = [
        "app.js": DashboardAsset(PackageResources.app_js, contentType: "text/javascript; charset=utf-8"),
        "api.js": DashboardAsset(PackageResources.api_js, contentType: "text/javascript; charset=utf-8"),
        "style.css": DashboardAsset(PackageResources.style_css, contentType: "text/css; charset=utf-8"),
        "icon.svg": DashboardAsset(PackageResources.icon_svg, contentType: "image/svg+xml"),
    ]
}
