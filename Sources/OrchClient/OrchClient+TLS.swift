import AsyncHTTPClient
import NIOSSL

extension OrchClient {
    /// An HTTP client for a server whose certificate is signed by a private CA: it trusts only
    /// the CA certificates in the PEM file at `path` (as `curl --cacert` does). Hand it to
    /// ``init(baseURL:token:timeout:httpClient:)`` and shut it down when done with it.
    /// `https://` URLs with a publicly trusted certificate need no such client.
    public static func httpClient(trustingCertificatesIn path: String) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    }
}
