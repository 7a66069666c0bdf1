import Testing
import LoomGenAI

@Suite struct ParserTests {
    let parser = DocumentParser()

    private func parse(_ text: String, _ path: String) -> DocumentParseResult {
        parser.parse(Array(text.utf8), path: path)
    }

    @Test func detectsFormatFromExtension() {
        #expect(SourceFormat(path: "a/b/Notes.MD") == .markdown)
        #expect(SourceFormat(path: "x.markdown") == .markdown)
        #expect(SourceFormat(path: "page.htm") == .html)
        #expect(SourceFormat(path: "page.html") == .html)
        #expect(SourceFormat(path: "data.jsonl") == .jsonl)
        #expect(SourceFormat(path: "README") == .text)
        #expect(SourceFormat(path: "script.py") == .text)
        #expect(SourceFormat(path: ".md") == .text)
    }

    @Test func plainTextTitleIsFirstNonEmptyLine() throws {
        let result = parse("\n\n   Hello world  \r\nsecond line\r\n", "docs/a.txt")
        #expect(result.problems.isEmpty)
        let document = try #require(result.documents.first)
        #expect(document.title == "Hello world")
        #expect(document.text == "Hello world  \nsecond line")
        #expect(document.source == "docs/a.txt")
        #expect(document.metadata.isEmpty)
    }

    @Test func plainTextTitleIsClampedTo200Characters() throws {
        let long = String(repeating: "é", count: 500)
        let document = try #require(parse(long, "long.txt").documents.first)
        #expect(document.title.count == 200)
        #expect(document.text.count == 500)
    }

    @Test func markdownFrontMatterAndHeadingTitle() throws {
        let text = """
            ---
            title: "Front Title"
            lang: en
            tags:
              - a
            # comment
            ---
            Intro paragraph.

            ```
            # not the title
            ```

            # Real Heading

            Body.
            """
        let result = parse(text, "guide/install.md")
        let document = try #require(result.documents.first)
        #expect(document.metadata == ["title": "Front Title", "lang": "en"])
        #expect(document.title == "Real Heading")
        #expect(document.text.hasPrefix("Intro paragraph."))
        #expect(!document.text.contains("lang: en"))
        #expect(document.text.contains("# Real Heading"))
    }

    @Test func markdownTitleFallsBackToFrontMatterThenFileName() throws {
        let withFront = try #require(parse("---\ntitle: From Front\n---\n## Second level\ntext", "a.md").documents.first)
        #expect(withFront.title == "From Front")
        let bare = try #require(parse("Just text, no heading.", "dir/b.md").documents.first)
        #expect(bare.title == "b.md")
        let unterminated = try #require(parse("---\nkey: value\nno closing", "c.md").documents.first)
        #expect(unterminated.metadata.isEmpty)
        #expect(unterminated.text.hasPrefix("---"))
    }

    @Test func htmlExtractsVisibleTextHeadingsAndEntities() throws {
        let html = """
            <!DOCTYPE html>
            <html><head><title>Page &amp; Title</title><style>body { color: red }</style>
            <script>var x = "<p>hidden</p>";</script></head>
            <body><h1>Main</h1><p>Fish &amp; chips &lt;3 &quot;yum&quot; &#39;ok&#39; caf&#xE9; &#65;&nbsp;B</p>
            <div>one</div><div>two<br>three</div><script>alert("x")</script><!-- a comment -->
            <h2 class="x">Sub</h2><ul><li>a</li><li>b</li></ul></body></html>
            """
        let document = try #require(parse(html, "site/index.html").documents.first)
        #expect(document.title == "Page & Title")
        #expect(document.text == """
            # Main

            Fish & chips <3 "yum" 'ok' café A B

            one
            two
            three

            ## Sub

            a
            b
            """)
        #expect(!document.text.contains("hidden"))
        #expect(!document.text.contains("alert"))
        #expect(!document.text.contains("color"))
    }

    @Test func htmlTitleFallsBackToFirstH1ThenFileName() throws {
        let withHeading = try #require(parse("<body><h2>Two</h2><h1>The <b>One</b></h1></body>", "p.html").documents.first)
        #expect(withHeading.title == "The One")
        let bare = try #require(parse("<p>just text</p>", "dir/q.htm").documents.first)
        #expect(bare.title == "q.htm")
        #expect(bare.text == "just text")
    }

    @Test func htmlSurvivesMalformedMarkup() {
        let inputs = ["<", "<<<>>>", "<p", "<script>never closed", "<!-- open", "&#xFFFFFFFF; &#0; &bogus; &",
                      "<a href=\"x>y\">link</a>", "</p></div>", "<h1></h1>"]
        for input in inputs {
            _ = parse(input, "x.html")
        }
        let link = parse("<a href=\"x>y\">link</a> &#0; &#xD800;", "x.html").documents.first
        #expect(link?.text == "link \u{FFFD} \u{FFFD}")
    }

    @Test func jsonlParsesRecordsAndReportsBadLines() throws {
        let text = """
            {"text": "First doc", "title": "T1", "lang": "en", "n": 3, "ok": true, "nested": {"a": 1}, "none": null}
            not json
            {"title": "no text"}

            {"text": "Second\\nline", "score": 1.5}
            [1, 2]
            {"text": 42}
            {"text": "   "}
            """
        let result = parse(text, "data/f.jsonl")
        #expect(result.documents.count == 2)
        let first = try #require(result.documents.first)
        #expect(first.source == "data/f.jsonl#1")
        #expect(first.title == "T1")
        #expect(first.text == "First doc")
        #expect(first.metadata == ["lang": "en", "n": "3", "ok": "true"])
        let second = try #require(result.documents.last)
        #expect(second.source == "data/f.jsonl#5")
        #expect(second.title == "Second")
        #expect(second.metadata == ["score": "1.5"])
        #expect(result.problems.map(\.source) == [
            "data/f.jsonl#2", "data/f.jsonl#3", "data/f.jsonl#6", "data/f.jsonl#7", "data/f.jsonl#8",
        ])
        #expect(result.problems[0].message.contains("JSON"))
        #expect(result.problems[1].message.contains("\"text\""))
    }

    @Test func jsonlUsesConfiguredTextField() throws {
        let custom = DocumentParser(jsonlTextField: "body")
        let result = custom.parse(Array(#"{"body": "hello", "text": "meta"}"#.utf8), path: "x.jsonl")
        let document = try #require(result.documents.first)
        #expect(document.text == "hello")
        #expect(document.metadata == ["text": "meta"])
    }

    @Test func invalidUTF8IsReportedNotFatal() {
        let bytes: [UInt8] = [0x68, 0x69, 0xFF, 0xFE, 0x20, 0xC3]
        for path in ["a.txt", "a.md", "a.html"] {
            let result = parser.parse(bytes, path: path)
            #expect(result.documents.isEmpty)
            #expect(result.problems.count == 1)
            #expect(result.problems.first?.message.contains("UTF-8") == true)
        }
        let jsonl = Array(#"{"text": "ok"}"#.utf8) + [10] + [0x7B, 0xFF, 0x7D] + [10]
        let result = parser.parse(jsonl, path: "b.jsonl")
        #expect(result.documents.count == 1)
        #expect(result.problems.map(\.source) == ["b.jsonl#2"])
    }

    @Test func emptyAndBinaryFilesAreProblems() {
        #expect(parser.parse([], path: "empty.txt").problems.first?.message == "no text content")
        #expect(parser.parse(Array(" \n\t ".utf8), path: "blank.md").documents.isEmpty)
        #expect(parser.parse([0x89, 0x50, 0x4E, 0x47, 0, 0, 0], path: "image.txt").problems.count == 1)
    }

    @Test func randomBytesNeverCrash() {
        var random = TestRandom(seed: 7)
        let alphabet = Array("<>&#;/\"'=ab \n-{}[]:,\\`~".utf8)
        for round in 0..<300 {
            let length = Int(random.next() % 200)
            let bytes: [UInt8] = (0..<length).map { _ in
                round.isMultiple(of: 2) ? UInt8(truncatingIfNeeded: random.next()) : alphabet[Int(random.next() % UInt64(alphabet.count))]
            }
            for path in ["r.txt", "r.md", "r.html", "r.jsonl"] {
                let result = parser.parse(bytes, path: path)
                #expect(result.documents.allSatisfy { !$0.text.isEmpty })
            }
        }
    }
}
