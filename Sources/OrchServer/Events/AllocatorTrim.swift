#if canImport(Glibc)
import Glibc
#endif

/// Hands freed heap back to the system once many streams have gone.
///
/// glibc keeps memory it freed in its arenas; after thousands of streams that buffered large
/// frames close, the resident set would stay at its peak. When the streams (or the bytes they
/// hold) fall well below their peak since the last trim, `malloc_trim(0)` returns the free
/// pages. Checked once a second by ``EventStreamTicker``; a trim takes milliseconds.
struct AllocatorTrim {
    private var peakStreams = 0
    private var peakBytes = 0

    /// Notes the current streams and buffered bytes; trims when they dropped far enough.
    /// Returns whether it trimmed.
    @discardableResult
    mutating func observe(streams: Int, bufferedBytes: Int) -> Bool {
        peakStreams = max(peakStreams, streams)
        peakBytes = max(peakBytes, bufferedBytes)
        let streamsGone = peakStreams - streams >= 100 && streams <= peakStreams / 2
        let bytesGone = peakBytes - bufferedBytes >= 32 << 20
        guard streamsGone || bytesGone else { return false }
        Self.trimAllocator()
        peakStreams = streams
        peakBytes = bufferedBytes
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
