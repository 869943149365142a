import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// The filter translator, operator by operator and edge by edge, on the three places a field can
/// live (a typed column, the JSON column with known kinds, the JSON column with every kind), with the
/// Milvus 2.3.5 behaviour each spelling relies on stated in Filter/MilvusExpression.swift and checked
/// against the server by MilvusRoundTripTests (QUIVER_MILVUS=1).
struct MilvusExpressionTests {
    static func stats(_ field: String, _ kinds: [String: Int]) -> FieldStats {
        var s = FieldStats(field: field)
        s.documents = kinds.values.reduce(0, +)
        s.strings = kinds["string"] ?? 0
        s.integers = kinds["integer"] ?? 0
        s.floats = kinds["float"] ?? 0
        s.booleans = kinds["boolean"] ?? 0
        s.lists = kinds["list"] ?? 0
        s.nulls = kinds["null"] ?? 0
        return s
    }

    /// 10 documents: typed columns for lang (strings), year (ints), score (floats), open (bools), tags
    /// (lists); JSON for venue (indexed but missing in 4), note (strings and nulls), mixed (ints and
    /// floats), kind (strings and lists), big (ints only), and `bad-name` (an indexed field whose
    /// name is no Milvus identifier).
    static let mapping = MilvusMapping(stats: [
        stats("lang", ["string": 10]), stats("year", ["integer": 10]), stats("score", ["float": 10]),
        stats("open", ["boolean": 10]), stats("tags", ["list": 10]), stats("venue", ["string": 6]),
        stats("note", ["string": 7, "null": 3]), stats("mixed", ["integer": 5, "float": 5]),
        stats("kind", ["string": 5, "list": 5]), stats("big", ["integer": 10]), stats("bad-name", ["string": 10]),
    ], payloadIndexes: [
        .init(field: "lang", type: .keyword), .init(field: "year", type: .integer), .init(field: "score", type: .float),
        .init(field: "open", type: .bool), .init(field: "tags", type: .keyword), .init(field: "venue", type: .keyword),
        .init(field: "mixed", type: .integer), .init(field: "bad-name", type: .keyword),
    ], documents: 10)

    func milvus(_ text: String, _ mapping: MilvusMapping = Self.mapping) throws -> String {
        try Filter(text: text).milvusExpression(mapping: mapping)
    }

    func refusal(_ text: String, _ mapping: MilvusMapping = Self.mapping) throws -> MilvusTranslationError? {
        let filter = try Filter(text: text)
        do throws(MilvusTranslationError) {
            _ = try filter.milvusExpression(mapping: mapping)
            return nil
        } catch {
            return error
        }
    }

    @Test func theMappingPlacesOnlyTotalSingleTypedIndexedFieldsInColumns() {
        let m = Self.mapping
        #expect(m.fields["lang"]?.type == .varchar)
        #expect(m.fields["year"]?.type == .int64)
        #expect(m.fields["score"]?.type == .double)
        #expect(m.fields["open"]?.type == .bool)
        #expect(m.fields["tags"]?.type == .varcharArray)
        #expect(m.fields["venue"]?.column == nil && m.fields["venue"]?.note?.contains("4 document(s) lack it") == true)
        #expect(m.fields["mixed"]?.column == nil && m.fields["mixed"]?.note?.contains("integer, float") == true)
        #expect(m.fields["bad-name"]?.column == nil && m.fields["bad-name"]?.note?.contains("not a Milvus field name") == true)
        #expect(m.fields["note"]?.column == nil && m.fields["note"]?.note == nil)
        #expect(m.nullFieldsColumn == "null_fields")
        #expect(MilvusMapping(stats: [Self.stats("a", ["string": 1])], payloadIndexes: [], documents: 1).nullFieldsColumn == nil)
        #expect(MilvusMapping.isIdentifier("_a1") && !MilvusMapping.isIdentifier("1a") && !MilvusMapping.isIdentifier("") && !MilvusMapping.isIdentifier("é"))
    }

    @Test func equalityOnEachPlace() throws {
        #expect(try milvus(#"lang = "en""#) == #"lang == "en""#)
        #expect(try milvus("year = 2020") == "year == 2020")
        #expect(try milvus("year = 2020.0") == "year == 2020")
        #expect(try milvus("year = 2020.5") == #"id < """#)  // no integer equals it
        #expect(try milvus("score = 2") == "score == 2.0")
        #expect(try milvus("score = 0.25") == "score == 0.25")
        #expect(try milvus("score = 9007199254740993") == #"id < """#)  // no double holds it
        #expect(try milvus("open = true") == "open == true")
        #expect(try milvus(#"tags = "x""#) == #"array_contains(tags, "x")"#)
        #expect(try milvus(#"venue = "v""#) == #"metadata["venue"] == "v""#)
        #expect(try milvus("mixed = 3") == #"metadata["mixed"] == 3"#)
        #expect(try milvus("mixed = 3.5") == #"metadata["mixed"] == 3.5"#)
        #expect(try milvus(#"kind = "a""#) == #"(metadata["kind"] == "a") or (json_contains(metadata["kind"], "a"))"#)
    }

    @Test func aLiteralOfAKindTheFieldNeverHoldsMatchesNothing() throws {
        for text in [#"year = "2020""#, "lang = 1", "open = 1", "tags = 1", #"score = "x""#, "lang = true", "venue = 3", #"mixed = "3""#, "note = false"] {
            #expect(try milvus(text) == #"id < """#, "\(text)")
            #expect(try milvus("not (\(text))") == #"id >= """#, "\(text)")
        }
        #expect(try milvus("lang < 3") == #"id < """#)
        #expect(try milvus(#"year > "a""#) == #"id < """#)
        #expect(try Filter.field("score", .greaterOrEqual(.bool(true))).milvusExpression(mapping: Self.mapping) == #"id < """#)
    }

    @Test func negationsAreNotOfTheEquality() throws {
        // Quiver's != and not in are true on a missing key; Milvus's `not` of a JSON comparison is too.
        #expect(try milvus(#"venue != "v""#) == #"not (metadata["venue"] == "v")"#)
        #expect(try milvus(#"venue not in ("v", "w")"#) == #"not (metadata["venue"] in ["v", "w"])"#)
        #expect(try milvus("year != 3") == "not (year == 3)")
        #expect(try milvus("not year > 3") == "not (year > 3)")
    }

    @Test func inListsGroupByKind() throws {
        #expect(try milvus(#"lang in ("en", "fr")"#) == #"lang in ["en", "fr"]"#)
        #expect(try milvus("year in (1, 2.0, 2.5)") == "year in [1, 2]")
        #expect(try milvus("score in (1, 2.5)") == "score in [2.5, 1.0]")
        #expect(try milvus(#"tags in ("x", "y")"#) == #"array_contains_any(tags, ["x", "y"])"#)
        #expect(try milvus(#"kind in ("a", "b")"#) == #"(metadata["kind"] in ["a", "b"]) or (json_contains_any(metadata["kind"], ["a", "b"]))"#)
        #expect(try milvus(#"mixed in (1, 2.5, "x", true)"#) == #"(metadata["mixed"] == 1) or (metadata["mixed"] == 2.5)"#)
        #expect(try milvus(#"note in ("a", null)"#) == #"((not (exists metadata["note"])) or (array_contains(null_fields, "note"))) or (metadata["note"] == "a")"#)
        #expect(try milvus("open in (true, false)") == "open in [true, false]")
    }

    @Test func existsAndNulls() throws {
        #expect(try milvus("exists(lang)") == #"id >= """#)  // a typed column is in every row
        #expect(try milvus("not exists(lang)") == #"id < """#)
        #expect(try milvus("exists(venue)") == #"exists metadata["venue"]"#)
        #expect(try milvus("lang = null") == #"id < """#)
        #expect(try milvus("lang != null") == #"id >= """#)
        // No document holds a null under venue: null means missing there.
        #expect(try milvus("venue = null") == #"not (exists metadata["venue"])"#)
        #expect(try milvus("note = null") == #"(not (exists metadata["note"])) or (array_contains(null_fields, "note"))"#)
        #expect(try milvus("note != null") == #"not ((not (exists metadata["note"])) or (array_contains(null_fields, "note")))"#)
        #expect(try Filter.field("note", .less(.null)).milvusExpression(mapping: Self.mapping) == #"id < """#)
        // A field no document has: in the JSON column, possibly of any kind.
        #expect(try milvus("exists(nothing)") == #"exists metadata["nothing"]"#)
        #expect(try milvus("nothing = null") == #"(not (exists metadata["nothing"])) or (array_contains(null_fields, "nothing"))"#)
    }

    @Test func rangesOnEachPlace() throws {
        #expect(try milvus(#"lang >= "en""#) == #"lang >= "en""#)
        #expect(try milvus("year < 2020") == "year < 2020")
        #expect(try milvus("score <= 1") == "score <= 1.0")
        #expect(try milvus(#"venue > "m""#) == #"metadata["venue"] > "m""#)
        #expect(try milvus("mixed > 2") == #"metadata["mixed"] > 2"#)
        #expect(try milvus("mixed > 2.5") == #"metadata["mixed"] > 2.5"#)
        #expect(try milvus("big > 9007199254740993") == #"metadata["big"] > 9007199254740993"#)
        #expect(try Filter.field("open", .greater(.bool(false))).milvusExpression(mapping: Self.mapping) == #"id < """#)
        #expect(try milvus(#"tags = "x" and year > 1"#) == #"(array_contains(tags, "x")) and (year > 1)"#)
    }

    @Test func floatBoundsOnAnIntegerColumnAreExactIntegers() throws {
        #expect(try milvus("year < 2020.5") == "year <= 2020")
        #expect(try milvus("year <= 2020.5") == "year <= 2020")
        #expect(try milvus("year > 2020.5") == "year >= 2021")
        #expect(try milvus("year >= 2020.5") == "year >= 2021")
        #expect(try milvus("year > -0.5") == "year >= 0")
        #expect(try milvus("year < -0.5") == "year <= -1")
        #expect(try milvus("year < 1e19") == #"id >= """#)
        #expect(try milvus("year > 1e19") == #"id < """#)
        #expect(try milvus("year > -1e19") == #"id >= """#)
    }

    @Test func integerBoundsOnAFloatColumnAreExactDoubles() throws {
        // 2^53 + 1 lies between the doubles 2^53 and 2^53 + 2.
        #expect(try milvus("score < 9007199254740993") == "score <= 9007199254740992.0")
        #expect(try milvus("score >= 9007199254740993") == "score >= 9.007199254740994e+15")
        #expect(try milvus("score > 9223372036854775807") == "score >= 9.223372036854776e+18")
        #expect(try milvus("score <= -9223372036854775807") == "score <= -9.223372036854776e+18")
    }

    @Test func theSmallestIntegerIsSpelledWithoutIt() throws {
        let min = Filter.field("year", .greater(.int(.min)))
        #expect(try min.milvusExpression(mapping: Self.mapping) == "year >= -9223372036854775807")
        #expect(try Filter.field("year", .lessOrEqual(.int(.min))).milvusExpression(mapping: Self.mapping) == "year < -9223372036854775807")
        #expect(try Filter.field("year", .less(.int(.min))).milvusExpression(mapping: Self.mapping) == #"id < """#)
        #expect(try Filter.field("year", .greaterOrEqual(.int(.min))).milvusExpression(mapping: Self.mapping) == #"id >= """#)
        #expect(throws: MilvusTranslationError.self) { try Filter.field("big", .equal(.int(.min))).milvusExpression(mapping: Self.mapping) }
    }

    @Test func nanAndInfinity() throws {
        #expect(try Filter.field("score", .equal(.double(.nan))).milvusExpression(mapping: Self.mapping) == #"id < """#)
        #expect(try Filter.field("score", .less(.double(.nan))).milvusExpression(mapping: Self.mapping) == #"id < """#)
        #expect(throws: MilvusTranslationError.self) { try Filter.field("score", .less(.double(.infinity))).milvusExpression(mapping: Self.mapping) }
    }

    @Test func refusalsNameTheFieldAndTheReason() throws {
        let list = try #require(try refusal(#"tags > "a""#))
        #expect(list.field == "tags" && list.reason.contains("lists of strings"))
        #expect(list.description.hasPrefix("cannot translate the condition on 'tags' to Milvus"))
        #expect(try refusal(#"kind <= "a""#)?.field == "kind")
        #expect(try refusal(#"anything < "a""#, .allJSON)?.reason.contains("lists") == true)  // may hold lists
        #expect(try refusal("mixed > 9007199254740993")?.reason.contains("2^53") == true)
        #expect(try refusal("mixed = 1e300")?.reason.contains("2^53") == true)
        #expect(try refusal("`a/b` = 1")?.reason.contains("'/'") == true)
        #expect(throws: MilvusTranslationError(field: "", reason: "Milvus reads a JSON key as a JSON pointer, so a key that is empty or holds '/' cannot be named in an expression")) {
            try Filter.field("", .equal(.int(1))).milvusExpression(mapping: Self.mapping)
        }
        #expect(try refusal("`a~b` = 1") == nil)
        // Only the offending branch matters: an or with a constant-true branch still refuses.
        #expect(try refusal(#"exists(lang) or tags > "a""#)?.field == "tags")
    }

    @Test func constantsFold() throws {
        #expect(try milvus("true") == #"id >= """#)
        #expect(try milvus("false") == #"id < """#)
        #expect(try milvus("year = 1 and true") == "year == 1")
        #expect(try milvus("year = 1 or false") == "year == 1")
        #expect(try milvus(#"year = 1 and lang = 3"#) == #"id < """#)
        #expect(try milvus(#"year = 1 or exists(lang)"#) == #"id >= """#)
        #expect(try milvus("not not year = 1") == "not (not (year == 1))")
        let custom = MilvusMapping(idColumn: "pk", jsonColumn: "m", nullFieldsColumn: nil)
        #expect(try milvus("true", custom) == #"pk >= """#)
        #expect(try milvus("x = null", custom) == #"not (exists m["x"])"#)
    }

    @Test func stringsAreEscaped() throws {
        #expect(try milvus(#"lang = "a\"b\\c""#) == #"lang == "a\"b\\c""#)
        #expect(try milvus(#"lang = "l\nm\u0001é""#) == "lang == \"l\\nm\\u0001é\"")
        #expect(try milvus(#"`we"ird` = "x""#) == #"(metadata["we\"ird"] == "x") or (json_contains(metadata["we\"ird"], "x"))"#)
    }

    @Test func jsonAndTextFormsTranslateAlike() throws {
        let json = try Filter(json: #"{"$or": [{"year": {"$gte": 2020}}, {"tags": {"$in": ["x"]}}], "note": {"$exists": true}}"#)
        #expect(try json.milvusExpression(mapping: Self.mapping)
            == (try milvus(#"(year >= 2020 or tags in ("x")) and exists(note)"#)))
    }

    @Test func tooDeepAFilterIsRefused() {
        var f = Filter.field("year", .equal(.int(1)))
        for _ in 0..<100 { f = .not(.or([f, .field("lang", .equal(.string("x")))])) }
        #expect(throws: MilvusTranslationError.self) { try f.milvusExpression(mapping: Self.mapping) }
    }
}
