import Testing
@testable import LoomGenAI

/// The substrings found in `text` for the given kinds, as (kind, text) pairs.
private func found(_ text: String, _ kinds: Set<PIIKind> = Set(PIIKind.allCases)) -> [(PIIKind, String)] {
    let bytes = Array(text.utf8)
    return PIIScanner.scan(text, kinds: kinds).map {
        ($0.kind, String(decoding: bytes[$0.range], as: UTF8.self))
    }
}

private func strings(_ text: String, _ kind: PIIKind) -> [String] {
    found(text, [kind]).map(\.1)
}

private func kindsFound(_ text: String) -> [PIIKind] {
    PIIScanner.scan(text).map(\.kind)
}

@Suite("Email")
struct EmailTests {
    @Test func plainAndPlusAndSubdomains() {
        #expect(strings("Write to jane@example.com today", .email) == ["jane@example.com"])
        #expect(strings("john.doe+news@mail.example.co.uk", .email) == ["john.doe+news@mail.example.co.uk"])
        #expect(strings("x_y%z-1@sub-domain.a1.example.org", .email) == ["x_y%z-1@sub-domain.a1.example.org"])
        #expect(strings("<A.B@Example.COM>", .email) == ["A.B@Example.COM"])
    }

    @Test func stopsAtTheFirstCharacterThatCannotBelong() {
        #expect(strings("Mail jane@example.com.", .email) == ["jane@example.com"])
        #expect(strings("(jane@example.com)", .email) == ["jane@example.com"])
        #expect(strings("jane@example.com, bob@example.net;", .email) == ["jane@example.com", "bob@example.net"])
        #expect(strings("«jane@example.com»", .email) == ["jane@example.com"])
        #expect(strings("Grüße:jane@example.com", .email) == ["jane@example.com"])
        #expect(strings("...jane@example.com", .email) == ["jane@example.com"])
    }

    @Test func negatives() {
        #expect(strings("a@b", .email).isEmpty)
        #expect(strings("user@localhost", .email).isEmpty)
        #expect(strings("john.@example.com", .email).isEmpty)
        #expect(strings("x@1.2.3.4", .email).isEmpty)
        #expect(strings("user@example.c", .email).isEmpty)
        #expect(strings("user@example.c0m", .email).isEmpty)
        #expect(strings("@example.com", .email).isEmpty)
        #expect(strings("user@-example.com", .email).isEmpty)
        #expect(strings("see @mention and email me", .email).isEmpty)
        #expect(strings("price is 5@10.5", .email).isEmpty)
    }

    @Test func byteRangesAreUTF8Offsets() {
        let text = "Zoë → zoe@example.com"
        let f = PIIScanner.scan(text)
        #expect(f == [PIIFinding(kind: .email, range: 9..<24)])
    }
}

@Suite("Payment cards")
struct PaymentCardTests {
    @Test(arguments: [
        "4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",   // Visa
        "4012888888881881", "4012 8888 8888 1881",                          // Visa
        "378282246310005", "3782 822463 10005", "3782-822463-10005",        // Amex
        "371449635398431",                                                   // Amex
        "5555555555554444", "5555 5555 5555 4444", "5105-1051-0510-5100",   // Mastercard
        "2223003122003222",                                                  // Mastercard 2-series
        "6011111111111117",                                                  // Discover
        "4111111111111111110",                                               // 19-digit Visa (Luhn ok)
    ])
    func validCards(_ card: String) {
        let r = found("card: \(card).")
        #expect(r.count == 1)
        #expect(r.first?.0 == .paymentCard)
        #expect(r.first?.1 == card)
    }

    @Test func luhnFailureIsNotACard() {
        #expect(strings("4111111111111112", .paymentCard).isEmpty)
        #expect(strings("4111 1111 1111 1112", .paymentCard).isEmpty)
        #expect(strings("1234567812345678", .paymentCard).isEmpty)
    }

    @Test func boundaries() {
        #expect(strings("abc4111111111111111", .paymentCard).isEmpty)
        #expect(strings("4111111111111111abc", .paymentCard).isEmpty)
        #expect(strings("94111111111111111", .paymentCard).isEmpty)        // 17 digits, Luhn fails
        #expect(strings("4111111111111111.50", .paymentCard).isEmpty)
        #expect(strings("x-4111-1111-1111-1111-9", .paymentCard).isEmpty)  // longer dash-grouped number
        #expect(strings("0000 0000 0000 0000", .paymentCard).isEmpty)       // Luhn-valid but not a card
        #expect(strings("4111 1111 1111 1111", .paymentCard) == ["4111 1111 1111 1111"])
        #expect(strings("日本4111111111111111です", .paymentCard) == ["4111111111111111"])
        #expect(strings("cards 4111 1111 1111 1111 and 5555-5555-5555-4444", .paymentCard)
            == ["4111 1111 1111 1111", "5555-5555-5555-4444"])
        // Mixed separators are not one grouping.
        #expect(strings("4111 1111-1111 1111", .paymentCard).isEmpty)
        // Card followed by a space-separated number.
        #expect(strings("4111 1111 1111 1111 12/28", .paymentCard) == ["4111 1111 1111 1111"])
    }

    @Test func cardsInsideLongRunsOfNumberGroups() {
        for prefixGroups in [0, 1, 25, 26, 27, 28, 29, 30, 31, 32, 33, 60] {
            let text = String(repeating: "12 ", count: prefixGroups) + "4111 1111 1111 1111 " + String(repeating: "7 ", count: 40)
            #expect(strings(text, .paymentCard) == ["4111 1111 1111 1111"], "prefix \(prefixGroups)")
        }
        let two = String(repeating: "4111 1111 1111 1111 ", count: 20)
        #expect(strings(two, .paymentCard).count == 20)
    }

    @Test func ordinaryNumbersAreNotCards() {
        #expect(strings("order 1234567 shipped 2026-11-26", .paymentCard).isEmpty)
        #expect(strings("1 2 3 4 5 6 7 8 9 1 2 3 4 5 6 7", .paymentCard).isEmpty)
        #expect(strings("tracking 1Z999AA10123456784", .paymentCard).isEmpty)
    }
}

@Suite("IBAN")
struct IBANTests {
    @Test func validCompactAndSpaced() {
        #expect(found("IBAN GB82WEST12345698765432 ok").map(\.1) == ["GB82WEST12345698765432"])
        #expect(found("IBAN GB82 WEST 1234 5698 7654 32 ok").map(\.1) == ["GB82 WEST 1234 5698 7654 32"])
        #expect(found("DE89370400440532013000").map(\.0) == [.iban])
        #expect(strings("DE89 3704 0044 0532 0130 00", .iban) == ["DE89 3704 0044 0532 0130 00"])
        #expect(strings("FR1420041010050500013M02606", .iban) == ["FR1420041010050500013M02606"])
        #expect(strings("NO9386011117947", .iban) == ["NO9386011117947"])   // shortest (15)
    }

    @Test func checksumMustPass() {
        #expect(strings("GB82WEST12345698765433", .iban).isEmpty)
        #expect(strings("GB82 WEST 1234 5698 7654 33", .iban).isEmpty)
        #expect(strings("GB83WEST12345698765432", .iban).isEmpty)
        #expect(found("GB82WEST12345698765433").isEmpty)
    }

    @Test func boundariesAndCase() {
        #expect(strings("xGB82WEST12345698765432", .iban).isEmpty)
        #expect(strings("GB82WEST12345698765432x", .iban).isEmpty)
        #expect(strings("gb82west12345698765432", .iban).isEmpty)
        // Spaced IBAN followed by more upper-case text: backs off to the valid prefix.
        #expect(strings("GB82 WEST 1234 5698 7654 32 ABCD", .iban) == ["GB82 WEST 1234 5698 7654 32"])
        #expect(strings("(IBAN: GB82 WEST 1234 5698 7654 32)", .iban) == ["GB82 WEST 1234 5698 7654 32"])
    }
}

@Suite("National IDs")
struct NationalIDTests {
    @Test func ssn() {
        #expect(found("SSN 536-22-1234.").map(\.0) == [.nationalID])
        #expect(strings("SSN 536-22-1234.", .nationalID) == ["536-22-1234"])
        #expect(strings("000-12-3456", .nationalID).isEmpty)
        #expect(strings("666-12-3456", .nationalID).isEmpty)
        #expect(strings("900-12-3456", .nationalID).isEmpty)
        #expect(strings("536-00-1234", .nationalID).isEmpty)
        #expect(strings("536-22-0000", .nationalID).isEmpty)
        #expect(strings("1536-22-1234", .nationalID).isEmpty)
        #expect(strings("536-22-12345", .nationalID).isEmpty)
        #expect(strings("536-22-1234-7", .nationalID).isEmpty)
        #expect(strings("536221234", .nationalID).isEmpty)
        #expect(found("000-12-3456").isEmpty)
    }

    @Test func nino() {
        #expect(strings("NI number AB123456C.", .nationalID) == ["AB123456C"])
        #expect(strings("NI number AB 12 34 56 C.", .nationalID) == ["AB 12 34 56 C"])
        #expect(strings("JG 103759 A", .nationalID) == ["JG 103759 A"])
        #expect(found("AB123456D").map(\.0) == [.nationalID])
        // Official exclusions.
        #expect(strings("QQ123456C", .nationalID).isEmpty)      // Q never a first letter
        #expect(strings("QQ 12 34 56 C", .nationalID).isEmpty)
        #expect(strings("DA123456A", .nationalID).isEmpty)      // D never a first letter
        #expect(strings("AO123456A", .nationalID).isEmpty)      // O never a second letter
        #expect(strings("GB123456A", .nationalID).isEmpty)      // unallocated prefix
        #expect(strings("ZZ123456A", .nationalID).isEmpty)
        #expect(strings("AB123456E", .nationalID).isEmpty)      // suffix must be A-D
        #expect(strings("AB1234567C", .nationalID).isEmpty)
        #expect(strings("XAB123456C", .nationalID).isEmpty)
        #expect(strings("AB123456Cx", .nationalID).isEmpty)
        #expect(strings("ab123456c", .nationalID).isEmpty)      // upper case only
    }
}

@Suite("Phone")
struct PhoneTests {
    @Test(arguments: [
        "+44 20 7946 0958", "+1 (415) 555-0132", "+14155550132", "+49-30-901820", "+33 1.23.45.67.89",
        "+44 (0) 20 7946 0958", "(415) 555-0132", "(415)555-0132", "415-555-0132", "415.555.0132",
        "1-415-555-0132", "1 (415) 555-0132",
    ])
    func positives(_ phone: String) {
        #expect(strings("Call \(phone) now.", .phone) == [phone])
        #expect(kindsFound("Call \(phone) now.") == [.phone])
    }

    @Test(arguments: [
        "2026-11-26", "12:30:45", "version 1.2.3", "price 1234567", "order #12345678", "4155550132",
        "14155550132", "call 555-0132", "123-456-7890", "415-555.0132", "415-555-01325", "+1234567",
        "+4411112222333344445", "on 26.11.2026 at 10.30", "ISBN 978-3-16-148410-0", "(415) 555-01",
        "abc+44 20 7946 0958",
    ])
    func negatives(_ text: String) {
        #expect(strings(text, .phone).isEmpty)
    }

    @Test func phoneNeverOverlapsCardIBANOrSSN() {
        #expect(found("+4111 1111 1111 1111").map(\.0) == [.paymentCard])
        #expect(strings("SSN 536-22-1234", .phone).isEmpty)
        #expect(found("Pay 4111-1111-1111-1111 or call 415-555-0132").map(\.0) == [.paymentCard, .phone])
    }
}

@Suite("IP addresses")
struct IPAddressTests {
    @Test(arguments: ["192.168.1.1", "10.0.0.1", "0.0.0.0", "255.255.255.255", "8.8.8.8"])
    func ipv4(_ ip: String) {
        #expect(found("host \(ip), ok").map(\.1) == [ip])
        #expect(kindsFound("host \(ip), ok") == [.ipAddress])
    }

    @Test func ipv4Negatives() {
        #expect(strings("v10.0.0.300", .ipAddress).isEmpty)
        #expect(strings("10.0.0.300", .ipAddress).isEmpty)
        #expect(strings("256.1.1.1", .ipAddress).isEmpty)
        #expect(strings("1.2.3.4.5", .ipAddress).isEmpty)
        #expect(strings("01.2.3.4", .ipAddress).isEmpty)
        #expect(strings("1.2.3", .ipAddress).isEmpty)
        #expect(strings("1.2.3.4a", .ipAddress).isEmpty)
        #expect(strings("a1.2.3.4", .ipAddress).isEmpty)
        #expect(strings("1.2.3.1000", .ipAddress).isEmpty)
        #expect(strings("price 3.50 on 1.2", .ipAddress).isEmpty)
    }

    @Test func ipv4Edges() {
        #expect(strings("version 1.2.3.4", .ipAddress) == ["1.2.3.4"])
        #expect(strings("at 10.0.0.1.", .ipAddress) == ["10.0.0.1"])
        #expect(strings("10.0.0.1:8080", .ipAddress) == ["10.0.0.1"])
    }

    @Test(arguments: [
        "2001:db8::1", "::1", "fe80::1ff:fe23:4567:890a", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "2001:DB8:0:0:8:800:200C:417A", "::ffff:192.0.2.128", "1::", "2001:db8::",
    ])
    func ipv6(_ ip: String) {
        #expect(found("addr \(ip) ok").map(\.1) == [ip])
        #expect(kindsFound("addr \(ip) ok") == [.ipAddress])
    }

    @Test(arguments: [
        "12:30", "10:20:30", "12:30:45", "std::vector", "Foo::bar", "cafe::face", "1:2:3:4:5:6:7",
        "2001:db8::1::2", "2001:db8:85a3:0:0:8a2e:370:7334:1", "12345::1", "::", "x::1",
        "00:1a:2b:3c:4d:5e",
    ])
    func ipv6Negatives(_ text: String) {
        #expect(strings("at \(text) now", .ipAddress).isEmpty)
    }

    @Test func ipv6Boundaries() {
        #expect(strings("[2001:db8::1]:443", .ipAddress) == ["2001:db8::1"])
        #expect(strings("ping ::1.", .ipAddress) == ["::1"])
        #expect(strings("addr: fe80::1: done", .ipAddress) == ["fe80::1"])
    }
}

@Suite("Scan and redact")
struct ScanAndRedactTests {
    @Test func mixedTextSortedNonOverlapping() {
        let text = "Email me at john@example.com or call +1 (415) 555-0132. Card 4111 1111 1111 1111, "
            + "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1234, server 10.0.0.1 / 2001:db8::1."
        let f = PIIScanner.scan(text)
        #expect(f.map(\.kind) == [.email, .phone, .paymentCard, .iban, .nationalID, .ipAddress, .ipAddress])
        for (a, b) in zip(f, f.dropFirst()) { #expect(a.range.upperBound <= b.range.lowerBound) }
    }

    @Test func redactExact() {
        let text = "Email me at john@example.com or call +1 (415) 555-0132."
        #expect(PIIScanner.redact(text, PIIScanner.scan(text)) == "Email me at [EMAIL] or call [PHONE].")

        let text2 = "Card 4111-1111-1111-1111, IBAN GB82WEST12345698765432, SSN 536-22-1234, NI AB 12 34 56 C, ip ::1"
        #expect(PIIScanner.redact(text2, PIIScanner.scan(text2))
            == "Card [PAYMENT_CARD], IBAN [IBAN], SSN [NATIONAL_ID], NI [NATIONAL_ID], ip [IP_ADDRESS]")

        // The local part is ASCII-only ([A-Za-z0-9._%+-]); a non-ASCII byte is a boundary.
        let text3 = "Grüße — zoë@example.com 🙂 192.168.0.1"
        #expect(PIIScanner.redact(text3, PIIScanner.scan(text3)) == "Grüße — zoë@example.com 🙂 [IP_ADDRESS]")
    }

    @Test func redactNonASCIIAroundFindings() {
        let text = "Kontakt: mueller@example.de — Привет +44 20 7946 0958!"
        #expect(PIIScanner.redact(text, PIIScanner.scan(text)) == "Kontakt: [EMAIL] — Привет [PHONE]!")
        let text2 = "Kontakt: müller@example.de"
        #expect(PIIScanner.redact(text2, PIIScanner.scan(text2)) == "Kontakt: mü[EMAIL]")
    }

    @Test func redactHandlesUnsortedAndOverlappingFindings() {
        let text = "abcdefghij"
        let f = [PIIFinding(kind: .phone, range: 6..<8), PIIFinding(kind: .email, range: 1..<3),
                 PIIFinding(kind: .iban, range: 2..<4)]
        #expect(PIIScanner.redact(text, f) == "a[EMAIL]ef[PHONE]ij")
        #expect(PIIScanner.redact(text, []) == text)
        #expect(PIIScanner.redact(text, [PIIFinding(kind: .iban, range: 8..<99)]) == "abcdefgh[IBAN]")
    }

    @Test func placeholders() {
        #expect(PIIKind.allCases.map(PIIScanner.placeholder)
            == ["[EMAIL]", "[PHONE]", "[PAYMENT_CARD]", "[IBAN]", "[NATIONAL_ID]", "[IP_ADDRESS]"])
        #expect(PIIKind.allCases.map(\.rawValue)
            == ["email", "phone", "payment_card", "iban", "national_id", "ip_address"])
    }

    @Test func kindsFilter() {
        let text = "john@example.com 10.0.0.1 4111111111111111"
        #expect(PIIScanner.scan(text, kinds: [.ipAddress]).map(\.kind) == [.ipAddress])
        #expect(PIIScanner.scan(text, kinds: [.email, .paymentCard]).map(\.kind) == [.email, .paymentCard])
        #expect(PIIScanner.scan(text, kinds: []).isEmpty)
        #expect(PIIScanner.scan("").isEmpty)
    }

    @Test func overlapKeepsTheLonger() {
        // The IPv4 tail of an IPv4-mapped IPv6 address is also an IPv4 candidate; the longer one wins.
        #expect(found("::ffff:10.0.0.1").map(\.1) == ["::ffff:10.0.0.1"])
    }

    @Test func ordinaryTextHasNoFindings() {
        let text = """
        On 2026-11-26 at 12:30:45 we released version 1.2.3 (build 4567) for $1,234.56; order #1234567 \
        shipped in 3-5 days. Ratio 3:2, score 10:20:30, room 101, pages 12-15, ISBN 978-3-16-148410-0, \
        C++::std, a@b, user@localhost, SKU AB-1234-XY, 50% off. Ünïcödé tëxt — “quoted” … ok.
        """
        #expect(found(text).isEmpty)
    }
}
