import OrchModels

/// The Swift client library arrives with its own issue; the target exists so the package layout
/// is complete and its dependencies are built from the start.
public enum OrchClientVersion {
    /// The API version this client speaks.
    public static let apiVersion = "v1"
}
