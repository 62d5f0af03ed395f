import Loop
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct UVErrorTests {
    @Test func descriptionHasNameAndMessage() {
        #expect(UVError.addressInUse.name == "EADDRINUSE")
        #expect(UVError.addressInUse.description == "EADDRINUSE: address already in use")
        #expect(UVError(-ECONNREFUSED).description == "ECONNREFUSED: connection refused")
        #expect(UVError(-ECONNRESET).description == "ECONNRESET: connection reset by peer")
        #expect(UVError.cancelled.name == "ECANCELED")
        #expect("\(UVError.cancelled)".hasPrefix("ECANCELED: "))
    }

    @Test func codesAreNegatedErrnoValuesOnLinux() {
        #expect(UVError.addressInUse.code == -EADDRINUSE)
        #expect(UVError.cancelled.code == -ECANCELED)
    }

    @Test func endOfFileIsRecognised() {
        let eof = UVError(-4095)
        #expect(eof.isEndOfFile)
        #expect(eof.name == "EOF")
        #expect(eof.description == "EOF: end of file")
        #expect(!UVError(-ECONNRESET).isEndOfFile)
    }

    @Test func equalityIsByCode() {
        #expect(UVError(-EADDRINUSE) == .addressInUse)
        #expect(UVError(-EADDRINUSE) != .cancelled)
    }
}
