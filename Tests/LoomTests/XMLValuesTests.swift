import Foundation
import NIOCore
import Testing

@testable import LoomArtifacts

#if canImport(FoundationXML)
import FoundationXML
#endif

/// S3's answers are read by a small reader of Loom's own (`XMLValues`) rather than Foundation's
/// `XMLParser` (which would load libxml2 into the server). Both must read the same values.
@Suite("XML values of S3 answers")
struct XMLValuesTests {
    /// What `XMLParser` reads: the reader `XMLValues` replaced, kept here as the reference.
    final class Reference: NSObject, XMLParserDelegate {
        var values: [(String, String)] = []
        var text = ""

        static func parse(_ text: String) -> [(String, String)] {
            let parser = XMLParser(data: Data(text.utf8))
            let collector = Reference()
            parser.delegate = collector
            _ = parser.parse()
            return collector.values
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            values.append((name, ""))
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, foundCDATA block: Data) { text += String(decoding: block, as: UTF8.self) }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if let i = values.lastIndex(where: { $0.0 == name }), values[i].1.isEmpty {
                values[i].1 = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            text = ""
        }
    }

    static let documents = [
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Bucket>loom</Bucket><Key>runs/a b/model.bin</Key><UploadId>VXBsb2FkIElE-1</UploadId>
        </InitiateMultipartUploadResult>
        """,
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>loom</Name><Prefix>0/</Prefix>
        <KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
        <Contents><Key>0/a&amp;b&lt;c&gt;.txt</Key><LastModified>2026-11-27T09:00:00.000Z</LastModified>
        <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
        <Contents><Key>0/caf&#233; &#x263A;.txt</Key><Size>0</Size></Contents>
        <CommonPrefixes><Prefix>0/models/</Prefix></CommonPrefixes>
        <NextContinuationToken/>
        </ListBucketResult>
        """,
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- an error -->
        <Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>
        <Key>a/<![CDATA[x<y]]></Key><RequestId>tx1</RequestId></Error>
        """,
        "<Error><Code>BucketAlreadyOwnedByYou</Code></Error>",
        "",
    ]

    @Test("reads what XMLParser reads from S3's answers")
    func sameAsXMLParser() throws {
        for document in Self.documents {
            let ours = XMLValues.parse(ByteBuffer(string: document))
            let reference = Reference.parse(document)
            #expect(ours.map(\.0) == reference.map(\.0), "\(document.prefix(60))")
            #expect(ours.map(\.1) == reference.map(\.1), "\(document.prefix(60))")
        }
        let listing = XMLValues.parse(ByteBuffer(string: Self.documents[1]))
        #expect(listing.filter { $0.0 == "Key" }.map(\.1) == ["0/a&b<c>.txt", "0/café ☺.txt"])
        #expect(listing.first { $0.0 == "ETag" }?.1 == "\"9b2cf535f27731c974343645a3985328\"")
    }

    @Test("a malformed document yields what was read before the fault")
    func malformed() {
        let values = XMLValues.parse(ByteBuffer(string: "<A><B>one</B><C>t&bogus;wo</C></A>"))
        #expect(values.map(\.0) == ["A", "B", "C"] && values[1].1 == "one" && values[2].1 == "")
        #expect(XMLValues.parse(ByteBuffer(string: "<A><B>unterminated")).map(\.0) == ["A", "B"])
        #expect(XMLValues.escape(#"a&b<c>"d"#) == "a&amp;b&lt;c&gt;&quot;d")
    }
}
