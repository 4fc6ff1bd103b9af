import OrchCore
import Testing

@Suite struct CallbackAddressTests {
    @Test(arguments: [
        "127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1",
        "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "::10.0.0.1",
    ])
    func internalAddresses(address: String) throws {
        let bytes = try #require(CallbackAddress.literal(address))
        #expect(CallbackAddress.isInternal(bytes), "\(address)")
    }

    @Test(arguments: [
        "93.184.216.34", "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.63.255.255", "100.128.0.0", "169.253.1.1",
        "192.169.0.1", "2606:4700::1111", "fec0::1", "::ffff:8.8.8.8",
    ])
    func publicAddresses(address: String) throws {
        let bytes = try #require(CallbackAddress.literal(address))
        #expect(!CallbackAddress.isInternal(bytes), "\(address)")
    }

    @Test func literalsInEveryFormTheResolverReads() throws {
        for form in ["127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1"] {
            #expect(CallbackAddress.literal(form) == [127, 0, 0, 1], "\(form)")
        }
        #expect(CallbackAddress.literal("hooks.example.com") == nil)
        #expect(CallbackAddress.text([10, 0, 0, 1]) == "10.0.0.1")
    }
}
