import NIOSSL

/// HTTPS on the server's port (`ORCH_TLS_CERT`, `ORCH_TLS_KEY`).
///
/// Both files are read and checked at start, before anything listens: a missing or unreadable
/// file, one that holds no PEM certificate or key, or a key that is not the certificate's stops
/// the server with one line naming the setting (exit 64). TLS 1.2 and 1.3 only; HTTP/1.1 over
/// it. The port then speaks HTTPS only: a plain-HTTP request fails its handshake.
public enum ServerTLS {
    /// The TLS configuration for the certificate chain and key at these paths, already proven
    /// to make a context (which is where a key that does not match is refused).
    public static func configuration(certificatePath: String, keyPath: String) throws(ConfigurationError)
        -> TLSConfiguration
    {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw ConfigurationError("ORCH_TLS_CERT: cannot read a PEM certificate from \(certificatePath) (\(Self.reason(error)))")
        }
        guard !chain.isEmpty else { throw ConfigurationError("ORCH_TLS_CERT: \(certificatePath) holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigurationError("ORCH_TLS_KEY: cannot read a PEM private key from \(keyPath) (\(Self.reason(error)))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError("ORCH_TLS_KEY: the key in \(keyPath) is not the private key of the certificate in \(certificatePath)")
        }
        return configuration
    }

    static func reason(_ error: any Error) -> String {
        "\(error)"
    }
}
