import Foundation
import NeuralModels
import ProbeFarmTesting
import Testing

/// CSV as RFC 4180 writes it (SwiftCSV underneath): quoted fields keep their commas, quotes
/// and line breaks; a record of the wrong length is named.
struct CSVTableTests {
    static func file(_ text: String) throws -> String {
        let dir = try Fixtures.temporaryDirectory("probefarm-csv")
        let path = dir.appendingPathComponent("t.csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("quoted fields: commas, doubled quotes and line breaks inside")
    func quoted() throws {
        let path = try Self.file("name,\"city, state\",income\n\"Smith, J.\",\"Boston, MA\",>50K\n\"say \"\"hi\"\"\",\"two\nlines\",<=50K\n")
        let t = try CSVTable.read(path)
        #expect(t.header == ["name", "city, state", "income"])
        #expect(t.rows == [["Smith, J.", "Boston, MA", ">50K"], ["say \"hi\"", "two\nlines", "<=50K"]])
    }

    @Test("spaces around cells are trimmed (UCI's Adult writes ', '); a short record is named")
    func ragged() throws {
        #expect(try CSVTable.read(try Self.file("a, b\n1, 2\n")).rows == [["1", "2"]])
        do {
            _ = try CSVTable.read(try Self.file("a,b,c\n1,2,3\n4,5\n"))
            Issue.record("a short record was read")
        } catch let e as DataError {
            #expect(e.description.contains("record 2 (after the header) has 2 fields, the header has 3"), "\(e)")
        }
    }
}
