/// The `pagination` object of list responses.
public struct Pagination: Codable, Sendable, Hashable {
    /// The page size used.
    public var limit: Int
    /// How many items were skipped.
    public var offset: Int
    /// Whether items follow this page.
    public var hasMore: Bool

    public init(limit: Int, offset: Int, hasMore: Bool) {
        self.limit = limit
        self.offset = offset
        self.hasMore = hasMore
    }

    /// The pagination of a page of `count` items out of `total`.
    public init(limit: Int, offset: Int, total: Int) {
        self.init(limit: limit, offset: offset, hasMore: offset + limit < total)
    }

    enum CodingKeys: String, CodingKey {
        case limit, offset
        case hasMore = "has_more"
    }
}
