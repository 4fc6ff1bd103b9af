#if canImport(Glibc)
import Glibc
#endif

/// Hands freed heap back to the system once many streams have gone.
///
/// glibc keeps memory it freed in its arenas; after thousands of streams that had large frames
/// in flight close, the resident set would stay at its peak (measured: 1.15 GB an idle 45 MB
/// server kept after 5,000 such streams closed). Once at least 100 streams have closed since
/// the last trim and a second passes without more closing (or closures go on for 10 s),
/// `malloc_trim(0)` returns the free pages. Checked once a second by ``EventStreamTicker``; a
/// trim takes milliseconds.
struct AllocatorTrim {
    private var lastStreams = 0
    private var closedSinceTrim = 0
    private var wavesStart: ContinuousClock.Instant?

    /// Notes the streams open now; trims when a wave of closures has ended. Returns whether it
    /// trimmed.
    @discardableResult
    mutating func observe(streams: Int, now: ContinuousClock.Instant = .now) -> Bool {
        let closed = max(0, lastStreams - streams)
        lastStreams = streams
        if closed > 0 {
            closedSinceTrim += closed
            if wavesStart == nil { wavesStart = now }
        }
        guard closedSinceTrim >= 100 else { return false }
        let waveEnded = closed == 0
        let longWave = wavesStart.map { now - $0 >= .seconds(10) } ?? false
        guard waveEnded || longWave else { return false }
        Self.trimAllocator()
        closedSinceTrim = 0
        wavesStart = nil
        return true
    }

    /// glibc's `malloc_trim(0)` (looked up at run time: `malloc.h` is not part of the Glibc
    /// module); nothing where there is no such function.
    static func trimAllocator() {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        let trim = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        _ = trim(0)
        #endif
    }
}
