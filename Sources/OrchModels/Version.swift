/// The version of ORCH-Next: the server's (`/health`, `orch --version`) and the client's
/// (`User-Agent`).
public enum OrchVersion {
    public static let current = "0.1.0"
}
