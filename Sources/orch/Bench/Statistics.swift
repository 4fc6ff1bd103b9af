/// Summary figures of a set of measurements.
struct Statistics {
    private var values: [Double]

    init(_ values: [Double]) {
        self.values = values.sorted()
    }

    /// The value below which `fraction` of the measurements fall (nearest rank).
    func percentile(_ fraction: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let rank = Int((fraction * Double(values.count)).rounded(.up)) - 1
        return values[min(max(rank, 0), values.count - 1)]
    }
}

/// `12.3` with one decimal.
func format(_ value: Double, decimals: Int = 1) -> String {
    guard value.isFinite else { return "n/a" }
    var multiplier = 1.0
    for _ in 0..<decimals { multiplier *= 10 }
    let rounded = (value * multiplier).rounded() / multiplier
    return "\(rounded)"
}
