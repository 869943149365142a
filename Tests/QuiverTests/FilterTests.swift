import Testing
import QuiverCore
@testable import Quiver

/// The filter language: both forms parse to one AST, the evaluator agrees with an independent
/// reference on random documents, bad input gives positioned errors, and depth is bounded.
struct FilterTests {
    // MARK: - Both forms, one AST

    /// (JSON form, text form, expected tree).
    static let pairs: [(String, String, Filter)] = [
        (#"{"year": {"$gte": 2020}}"#, "year >= 2020", .field("year", .greaterOrEqual(.int(2020)))),
        (#"{"lang": "en"}"#, #"lang = "en""#, .field("lang", .equal(.string("en")))),
        (#"{"lang": {"$eq": "en"}}"#, #"lang == 'en'"#, .field("lang", .equal(.string("en")))),
        (#"{"tags": {"$in": ["a","b"]}}"#, #"tags in ("a","b")"#, .field("tags", .inList([.string("a"), .string("b")]))),
        (#"{"tags": {"$nin": ["a", 1, 2.5, true, null]}}"#, #"tags not in ("a", 1, 2.5, true, null)"#,
         .field("tags", .notInList([.string("a"), .int(1), .double(2.5), .bool(true), .null]))),
        (#"{"year": {"$gte": 2020}, "lang": "en", "tags": {"$in": ["a","b"]}}"#,
         #"year >= 2020 and lang = "en" and tags in ("a","b")"#,
         .and([.field("year", .greaterOrEqual(.int(2020))), .field("lang", .equal(.string("en"))),
               .field("tags", .inList([.string("a"), .string("b")]))])),
        (#"{"$not": {"$or": [{"a": 1}, {"b": {"$ne": 2}}]}}"#, "not (a = 1 or b != 2)",
         .not(.or([.field("a", .equal(.int(1))), .field("b", .notEqual(.int(2)))]))),
        (#"{"f": {"$exists": true}}"#, "exists(f)", .field("f", .exists)),
        (#"{"f": {"$exists": true}}"#, "f exists", .field("f", .exists)),
        (#"{"f": {"$exists": false}}"#, "not exists(f)", .not(.field("f", .exists))),
        (#"{"x": {"$gt": 1.5, "$lte": 3}}"#, "x > 1.5 and x <= 3",
         .and([.field("x", .greater(.double(1.5))), .field("x", .lessOrEqual(.int(3)))])),
        (#"{"x": {"$lt": -2e3}}"#, "x < -2e3", .field("x", .less(.double(-2000)))),
        (#"{"x": {"$ne": null}}"#, "x <> null", .field("x", .notEqual(.null))),
        (#"{"x": null}"#, "x = null", .field("x", .equal(.null))),
        (#"{"flag": false}"#, "flag = FALSE", .field("flag", .equal(.bool(false)))),
        (#"{"$or": [{"a": 1}, {"b": 2}], "c": 3}"#, "(a = 1 or b = 2) and c = 3",
         .and([.or([.field("a", .equal(.int(1))), .field("b", .equal(.int(2)))]), .field("c", .equal(.int(3)))])),
        // Precedence: not > and > or.
        (#"{"$or": [{"a": 1}, {"b": 2, "c": 3}]}"#, "a = 1 or b = 2 and c = 3",
         .or([.field("a", .equal(.int(1))), .and([.field("b", .equal(.int(2))), .field("c", .equal(.int(3)))])])),
        (#"{"$or": [{"$not": {"a": 1}}, {"b": 2}]}"#, "NOT a = 1 OR b = 2",
         .or([.not(.field("a", .equal(.int(1)))), .field("b", .equal(.int(2)))])),
        // Normalization: nested and/or flatten, single children unwrap.
        (#"{"a": 1, "$and": [{"b": 2}, {"$and": [{"c": 3}]}]}"#, "a = 1 and (b = 2 and (c = 3))",
         .and([.field("a", .equal(.int(1))), .field("b", .equal(.int(2))), .field("c", .equal(.int(3)))])),
        (#"{"$or": [{"$or": [{"a": 1}, {"b": 2}]}, {"c": 3}]}"#, "((a = 1 or b = 2)) or c = 3",
         .or([.field("a", .equal(.int(1))), .field("b", .equal(.int(2))), .field("c", .equal(.int(3)))])),
        (#"{"a": {"$not": {"$gt": 5}}}"#, "not a > 5", .not(.field("a", .greater(.int(5))))),
        (#"{"$not": {"$not": {"a": 1}}}"#, "not not a = 1", .not(.not(.field("a", .equal(.int(1)))))),
        // Escapes and odd field names.
        (#"{"s": "say \"hi\"\n\u00e9\ud83d\ude00"}"#, #"s = 'say "hi"\n\u00e9\u{1F600}'"#,
         .field("s", .equal(.string("say \"hi\"\né😀")))),
        (#"{"my key": 1, "and": 2, "d.e-f": 3}"#, "`my key` = 1 and `and` = 2 and d.e-f = 3",
         .and([.field("my key", .equal(.int(1))), .field("and", .equal(.int(2))), .field("d.e-f", .equal(.int(3)))])),
        (#"{"année": {"$gte": 2020}}"#, "année >= 2020", .field("année", .greaterOrEqual(.int(2020)))),
        (#"{"n": 9223372036854775807}"#, "n = 9223372036854775807", .field("n", .equal(.int(.max)))),
        (#"{"n": -9223372036854775808}"#, "n = -9223372036854775808", .field("n", .equal(.int(.min)))),
        (#"{"n": 2.0}"#, "n = 2.0", .field("n", .equal(.double(2)))),
        ("{}", "true", .and([])),
        // The constant false has no empty-$or spelling in JSON; negation of the constants is normalized.
        (#"{"$not": {}}"#, "false", .or([])),
        (#"{"$not": {}}"#, "not true", .or([])),
        (#"{"$not": {"$not": {}}}"#, "not false", .and([])),
        (#"{"$not": {"$not": {"$not": {}}}}"#, "not not not true", .or([])),
        // A backquote followed by a combining mark (one Character) is still doubled when printed.
        (#"{"`\u0DCFg'": "Een"}"#, "```\u{0DCF}g'` = \"Een\"", .field("`\u{0DCF}g'", .equal(.string("Een")))),
    ]

    @Test(arguments: 0..<pairs.count)
    func jsonAndTextParseToTheSameTree(_ i: Int) throws {
        let (json, text, expected) = Self.pairs[i]
        #expect(try Filter(json: json) == expected, "JSON \(json)")
        #expect(try Filter(text: text) == expected, "text \(text)")
        // And the printed forms read back as the same tree.
        #expect(try Filter(text: expected.description) == expected, "printed \(expected.description)")
        #expect(try Filter(json: expected.json) == expected, "printed \(expected.json)")
    }

    @Test func randomFiltersRoundTripThroughBothForms() throws {
        var rng = SplitMix64(seed: 0x51_F1_17E5)
        for _ in 0..<2_000 {
            let f = RandomFilters.filter(depth: 4, &rng)
            #expect(try Filter(text: f.description) == f, "text \(f.description)")
            #expect(try Filter(json: f.json) == f, "json \(f.json)")
        }
    }

    // MARK: - Semantics

    @Test func documentedRules() {
        let doc: Metadata = ["i": 2, "d": 2.5, "s": "b", "t": true, "n": nil, "l": ["x", "y"], "e": [], "big": .int(9_007_199_254_740_993)]
        func m(_ text: String) -> Bool {
            do { return try Filter(text: text).matches(doc) } catch { Issue.record("\(text): \(error)"); return false }
        }
        // Missing key: only ne/nin/eq null/not are true.
        #expect(!m("z = 1") && m("z != 1") && !m("z in (1)") && m("z not in (1)") && !m("z < 1") && !m("z >= 1") && !m("exists(z)"))
        #expect(m("z = null") && !m("z != null"))
        // Null value: present, equal to null only.
        #expect(m("exists(n)") && m("n = null") && !m("n != null") && !m("n = 0") && m("n != 0") && !m("n < 1"))
        // int/double compare numerically, exactly.
        #expect(m("i = 2.0") && m("i < 2.5") && m("d > 2") && m("d = 2.5") && m("i in (7, 2.0)"))
        #expect(!m("big = 9007199254740992.0") && m("big > 9007199254740992.0") && m("big = 9007199254740993"))
        // Type mismatch: false, and its negation true.
        #expect(!m(#"i = "2""#) && m(#"i != "2""#) && !m(#"s > 1"#) && !m("t = 1") && m("t = true") && !m("t != true"))
        // Strings order by scalar value.
        #expect(m(#"s > "a""#) && m(#"s < "c""#) && m(#"s >= "b""#) && !m(#"s < "B""#))
        // Lists: any element; ne/nin mean no element; an empty list equals nothing.
        #expect(m(#"l = "x""#) && m(#"l = "y""#) && !m(#"l = "z""#) && !m(#"l != "x""#) && m(#"l != "z""#))
        #expect(m(#"l in ("q", "y")"#) && !m(#"l not in ("q", "y")"#) && m(#"l > "x""#) && !m(#"l > "y""#))
        #expect(!m(#"e = "x""#) && m(#"e != "x""#) && !m("e = null") && m("exists(e)"))
        // Empty and/or.
        #expect(Filter.and([]).matches(doc) && !Filter.or([]).matches(doc))
        // NaN in metadata equals nothing and is unordered.
        let nan: Metadata = ["v": .double(.nan)]
        #expect(!Filter.field("v", .equal(.double(.nan))).matches(nan) && Filter.field("v", .notEqual(.int(1))).matches(nan))
        #expect(!Filter.field("v", .less(.int(1))).matches(nan) && !Filter.field("v", .greaterOrEqual(.int(1))).matches(nan))
    }

    @Test func exactIntDoubleComparison() {
        let cases: [(Int64, Double, Int)] = [
            (0, 0, 0), (1, 0.5, 1), (0, 0.5, -1), (-1, -0.5, -1), (-1, -1.5, 1),
            (.max, 9_223_372_036_854_775_808.0, -1), (.min, -9_223_372_036_854_775_808.0, 0),
            (.min, -9_223_372_036_854_777_856.0, 1), (9_007_199_254_740_993, 9_007_199_254_740_992.0, 1),
            (5, .infinity, -1), (5, -.infinity, 1),
        ]
        for (i, d, sign) in cases { #expect(FilterCondition.compareExactly(i, d) == sign, "\(i) vs \(d)") }
        #expect(FilterCondition.compareExactly(1, .nan) == nil)
    }

    /// Random documents x random filters of every operator: the evaluator against a reference that
    /// works on sets of documents and on "atoms" (a value's comparable parts), written from the
    /// rules in Filter.swift rather than from the evaluator.
    @Test func evaluatorAgreesWithBruteForceReference() {
        var rng = SplitMix64(seed: 20_240_611)
        let docs = (0..<300).map { _ in RandomFilters.document(&rng) }
        var operatorsSeen = Set<String>()
        var nonTrivial = 0
        for _ in 0..<3_000 {
            let f = RandomFilters.filter(depth: 4, &rng)
            RandomFilters.collectOperators(f, into: &operatorsSeen)
            let expected = Reference.matchingSet(f, docs)
            let actual = Set(docs.indices.filter { f.matches(docs[$0]) })
            #expect(actual == expected, "filter \(f)")
            if !expected.isEmpty && expected.count < docs.count { nonTrivial += 1 }
        }
        #expect(operatorsSeen == ["eq", "ne", "lt", "lte", "gt", "gte", "in", "nin", "exists", "and", "or", "not"])
        #expect(nonTrivial > 1_000, "the random filters should mostly select a proper subset")
    }

    // MARK: - Errors

    /// (input, message fragment, expected column, expected JSON path).
    static let badJSON: [(String, String, Int, String?)] = [
        (#"{"year": {"$foo": 1}}"#, "unknown operator $foo", 11, "$.year.$foo"),
        (#"{"$nor": []}"#, "unknown operator $nor", 2, "$.$nor"),
        (#"{"tags": {"$in": []}}"#, "$in needs at least one value", 18, "$.tags.$in"),
        (#"{"tags": {"$in": "a"}}"#, "$in takes an array of literals, not a string", 18, "$.tags.$in"),
        (#"{"tags": {"$in": [["a"]]}}"#, "$in item takes a string, number, boolean or null, not an array", 19, "$.tags.$in[0]"),
        (#"{"year": {"$gte": true}}"#, "$gte takes a number or a string, not a boolean", 19, "$.year.$gte"),
        (#"{"year": {"$lt": null}}"#, "$lt takes a number or a string, not null", 18, "$.year.$lt"),
        (#"{"f": {"$exists": 1}}"#, "$exists takes true or false, not a number", 19, "$.f.$exists"),
        (#"{"f": ["a"]}"#, "use {\"$in\"", 7, "$.f"),
        (#"{"f": {}}"#, "an empty operator object", 7, "$.f"),
        (#"{"$or": {"a": 1}}"#, "$or takes an array of filters, not an object", 9, "$.$or"),
        (#"{"$and": []}"#, "$and needs at least one filter", 10, "$.$and"),
        (#"{"$or": [{"a": 1}, 5]}"#, "a filter must be a JSON object, not a number", 20, "$.$or[1]"),
        (#"{"$not": [1]}"#, "a filter must be a JSON object, not an array", 10, "$.$not"),
        (#"{"f": {"gte": 1}}"#, "'gte' is not an operator", 8, "$.f.gte"),
        (#"[1]"#, "a filter must be a JSON object", 1, "$"),
        (#"{"a": 1, "a": 2}"#, "appears twice", 10, nil),
        (#"{"a": 1,}"#, "expected a string key", 9, nil),
        (#"{"a": 01}"#, "may not start with 0", 7, nil),
        (#"{"a": 1e999}"#, "outside the double range", 7, nil),
        (#"{"a": 9223372036854775808}"#, "outside the 64-bit range", 7, nil),
        (#"{"a": "x"#, "not closed", 7, nil),
        (#"{"a": tru}"#, "expected a JSON value", 7, nil),
        (#"{"a": 1} x"#, "unexpected text after the end", 10, nil),
        ("{\"a\":\n  {\"$gt\": [1]}}", "$gt takes a string, number, boolean or null, not an array", 11, "$.a.$gt"),
        ("", "expected a JSON value, found the end", 1, nil),
        (#"{"a": [1, 2}"#, "expected ',' or ']' in an array", 12, nil),
        // The JSON dialect of quoted strings (FilterStringLiteral.swift): no \', surrogates in pairs,
        // no raw control characters.
        (#"{"a": "\'"}"#, "unknown escape '\\''", 8, nil),
        (#"{"a": "\ud800x"}"#, "a \\u high surrogate must be followed by a low surrogate", 8, nil),
        (#"{"a": "\udc00"}"#, "a \\u low surrogate without a high surrogate", 8, nil),
        ("{\"a\": \"x\ty\"}", "a control character must be escaped", 9, nil),
    ]

    @Test(arguments: 0..<badJSON.count)
    func badJSONGivesPositionedError(_ i: Int) {
        let (input, fragment, column, path) = Self.badJSON[i]
        do {
            let f = try Filter(json: input)
            Issue.record("\(input) parsed as \(f)")
        } catch {
            #expect(error.message.contains(fragment), "\(input): \(error)")
            #expect(error.column == column, "\(input): \(error)")
            if let path { #expect(error.path == path, "\(input): \(error)") }
        }
    }

    @Test func jsonErrorOnALaterLine() {
        do {
            _ = try Filter(json: "{\"a\":\n  {\"$gt\": [1]}}")
        } catch {
            #expect(error.line == 2 && error.column == 11 && error.offset == 16, "\(error)")
        }
    }

    /// (input, message fragment, expected column).
    static let badText: [(String, String, Int)] = [
        ("year >= ", "expected a value, found the end", 9),
        ("year >> 2020", "expected a value (a string, number, true, false or null), found '>'", 7),
        (#"year >= "x" and lang ~ "en""#, "unexpected character '~'", 22),
        ("tags in ()", "an empty list", 9),
        ("tags in (\"a\" \"b\")", "expected ',' or ')' in the list", 14),
        ("a = 1 or", "expected a condition", 9),
        ("(a = 1", "expected ')' to close the '(' at column 1", 7),
        ("a = 1)", "expected 'and', 'or' or the end", 6),
        ("a = en", "found the word 'en'", 5),
        ("a > true", "> compares numbers or strings, not true", 5),
        ("a <= null", "<= compares numbers or strings, not null", 6),
        ("a", "expected an operator", 2),
        ("a = \"unterminated", "this string is not closed", 5),
        ("a = 'bad \\q escape'", "unknown escape '\\q'", 10),
        ("a = 99999999999999999999", "outside the 64-bit range", 5),
        ("a = 1.2.3", "is not a number", 5),
        ("exists a", "expected '(' after exists", 8),
        ("null = 1", "'null' is a keyword", 1),
        ("a ! 1", "unexpected character '!'", 3),
        ("", "the filter is empty", 1),
        ("é = 1 and ü ≠ 2", "unexpected character '≠'", 13),
        ("`open = 1", "this `field name` is not closed", 1),
        ("`` = 1", "an empty `field name`", 1),
        // The text dialect of quoted strings: \uXXXX is one scalar by itself.
        ("a = '\\ud800'", "'\\ud800' is not a Unicode scalar", 6),
        ("a = '\\u{110000}'", "is not a Unicode scalar", 6),
    ]

    @Test(arguments: 0..<badText.count)
    func badTextGivesPositionedError(_ i: Int) {
        let (input, fragment, column) = Self.badText[i]
        do {
            let f = try Filter(text: input)
            Issue.record("\(input) parsed as \(f)")
        } catch {
            #expect(error.message.contains(fragment), "\(input): \(error)")
            #expect(error.column == column, "\(input): \(error)")
            #expect(error.path == nil)
        }
    }

    @Test func caretPointsAtTheFault() {
        let input = #"year >= 2020 and lang ~ "en""#
        do {
            _ = try Filter(text: input)
            Issue.record("parsed")
        } catch {
            #expect(error.caretDiagnostic(source: input) == input + "\n" + String(repeating: " ", count: 22) + "^ unexpected character '~'")
            #expect(error.description == "line 1, column 23: unexpected character '~'")
        }
    }

    // MARK: - Bounds

    static let generous = FilterLimits(maxDepth: 64, maxListItems: 10_000, maxInputBytes: 1 << 30)

    @Test func millionDeepTextIsAnErrorNotACrash() {
        let n = 1_000_000
        let parens = String(repeating: "(", count: n) + "a = 1" + String(repeating: ")", count: n)
        #expect { try Filter(text: parens, limits: Self.generous) } throws: { e in
            (e as? FilterError).map { $0.message.contains("nested more than 64 levels") && $0.column == 64 } ?? false
        }
        let nots = String(repeating: "not ", count: n) + "a = 1"
        #expect { try Filter(text: nots, limits: Self.generous) } throws: { e in
            (e as? FilterError)?.message.contains("nested more than 64 levels") ?? false
        }
        // With the default limits the input is simply too large.
        #expect { try Filter(text: parens) } throws: { e in (e as? FilterError)?.message.contains("the limit is 1048576") ?? false }
    }

    @Test func millionDeepJSONIsAnErrorNotACrash() {
        let n = 1_000_000
        let nots = String(repeating: #"{"$not":"#, count: n) + #"{"a":1}"# + String(repeating: "}", count: n)
        #expect { try Filter(json: nots, limits: Self.generous) } throws: { e in
            (e as? FilterError)?.message.contains("nested more than") ?? false
        }
        let arrays = String(repeating: "[", count: n) + String(repeating: "]", count: n)
        #expect { try Filter(json: arrays, limits: Self.generous) } throws: { e in
            (e as? FilterError)?.message.contains("nested more than") ?? false
        }
        #expect { try Filter(json: nots) } throws: { e in (e as? FilterError)?.message.contains("the limit is") ?? false }
    }

    @Test func depthLimitIsExact() throws {
        // 64 levels parse, 65 do not, in both forms.
        func nested(_ levels: Int) -> Filter {
            var f = Filter.field("a", .equal(.int(1)))
            for _ in 1..<levels { f = .not(f) }
            return f
        }
        #expect(try Filter(text: nested(64).description) == nested(64))
        #expect(try Filter(json: nested(64).json) == nested(64))
        #expect(throws: FilterError.self) { try Filter(text: nested(65).description) }
        #expect(throws: FilterError.self) { try Filter(json: nested(65).json) }
        #expect(throws: FilterError.self) { try nested(65).validate() }
        #expect(nested(1_000).depth == 1_000)
    }

    @Test func listSizeIsBounded() throws {
        let ok = "a in (" + (0..<10_000).map(String.init).joined(separator: ",") + ")"
        #expect(try Filter(text: ok) == .field("a", .inList((0..<10_000).map { .int(Int64($0)) })))
        let tooMany = "a in (" + (0...10_000).map(String.init).joined(separator: ",") + ")"
        #expect(throws: FilterError.self) { try Filter(text: tooMany) }
        let tooManyJSON = #"{"a": {"$nin": ["# + (0...10_000).map(String.init).joined(separator: ",") + "]}}"
        #expect { try Filter(json: tooManyJSON) } throws: { e in (e as? FilterError)?.message.contains("the limit is 10000") ?? false }
    }

    @Test func parsesFromUTF8Bytes() throws {
        #expect(try Filter(jsonUTF8: Array(#"{"a": "é"}"#.utf8)) == .field("a", .equal(.string("é"))))
        #expect(throws: FilterError.self) { try Filter(jsonUTF8: [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]) }
    }
}

// MARK: - Test support

/// Random documents and filters over a small domain, so that conditions often match and often
/// hit the corner cases (missing keys, nulls, lists, int/double, mixed types).
enum RandomFilters {
    static let fields = ["a", "b", "c", "tags"]
    static let strings = ["", "x", "y", "xy", "é", "Z"]

    static func scalar(_ rng: inout SplitMix64) -> MetadataValue {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0: return .int(Int64.random(in: -3...3, using: &rng))
        case 1: return .double(Double(Int.random(in: -6...6, using: &rng)) / 2)
        case 2: return .string(strings.randomElement(using: &rng)!)
        case 3: return .bool(Bool.random(using: &rng))
        default: return .null
        }
    }

    static func document(_ rng: inout SplitMix64) -> Metadata {
        var m: Metadata = [:]
        for f in fields where Int.random(in: 0..<5, using: &rng) != 0 {
            if Int.random(in: 0..<3, using: &rng) == 0 {
                m[f] = .stringList((0..<Int.random(in: 0...3, using: &rng)).map { _ in strings.randomElement(using: &rng)! })
            } else {
                m[f] = scalar(&rng)
            }
        }
        return m
    }

    static func literal(rangeOnly: Bool, _ rng: inout SplitMix64) -> FilterLiteral {
        while true {
            switch scalar(&rng) {
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            case .bool(let b): if !rangeOnly { return .bool(b) }
            case .null: if !rangeOnly { return .null }
            case .stringList: break
            }
        }
    }

    static func leaf(_ rng: inout SplitMix64) -> Filter {
        let field = fields.randomElement(using: &rng)!
        let list = { (rng: inout SplitMix64) in (0..<Int.random(in: 1...3, using: &rng)).map { _ in literal(rangeOnly: false, &rng) } }
        switch Int.random(in: 0..<9, using: &rng) {
        case 0: return .field(field, .equal(literal(rangeOnly: false, &rng)))
        case 1: return .field(field, .notEqual(literal(rangeOnly: false, &rng)))
        case 2: return .field(field, .less(literal(rangeOnly: true, &rng)))
        case 3: return .field(field, .lessOrEqual(literal(rangeOnly: true, &rng)))
        case 4: return .field(field, .greater(literal(rangeOnly: true, &rng)))
        case 5: return .field(field, .greaterOrEqual(literal(rangeOnly: true, &rng)))
        case 6: return .field(field, .inList(list(&rng)))
        case 7: return .field(field, .notInList(list(&rng)))
        default: return .field(field, .exists)
        }
    }

    /// A normalized random filter (built with `all`/`any`, never empty).
    static func filter(depth: Int, _ rng: inout SplitMix64) -> Filter {
        if depth <= 1 || Int.random(in: 0..<3, using: &rng) == 0 { return leaf(&rng) }
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return .not(filter(depth: depth - 1, &rng))
        case 1: return .all((0..<Int.random(in: 2...3, using: &rng)).map { _ in filter(depth: depth - 1, &rng) })
        default: return .any((0..<Int.random(in: 2...3, using: &rng)).map { _ in filter(depth: depth - 1, &rng) })
        }
    }

    static func collectOperators(_ f: Filter, into seen: inout Set<String>) {
        switch f {
        case .and(let cs): seen.insert("and"); cs.forEach { collectOperators($0, into: &seen) }
        case .or(let cs): seen.insert("or"); cs.forEach { collectOperators($0, into: &seen) }
        case .not(let c): seen.insert("not"); collectOperators(c, into: &seen)
        case .field(_, let c):
            switch c {
            case .equal: seen.insert("eq")
            case .notEqual: seen.insert("ne")
            case .less: seen.insert("lt")
            case .lessOrEqual: seen.insert("lte")
            case .greater: seen.insert("gt")
            case .greaterOrEqual: seen.insert("gte")
            case .inList: seen.insert("in")
            case .notInList: seen.insert("nin")
            case .exists: seen.insert("exists")
            }
        }
    }
}

/// The reference: evaluates bottom-up over sets of document indices, and compares a value's
/// "atoms" (a list's elements, or the scalar itself) as doubles (exact on the test's domain of
/// small ints and halves) or as arrays of scalar values.
enum Reference {
    enum Atom: Equatable {
        case number(Double)
        case text([UInt32])
        case boolean(Bool)
    }

    static func atoms(_ v: MetadataValue?) -> [Atom] {
        switch v {
        case nil, .null?: return []
        case .int(let i)?: return [.number(Double(i))]
        case .double(let d)?: return [.number(d)]
        case .string(let s)?: return [.text(s.unicodeScalars.map(\.value))]
        case .bool(let b)?: return [.boolean(b)]
        case .stringList(let l)?: return l.map { .text($0.unicodeScalars.map(\.value)) }
        }
    }

    static func atom(_ x: FilterLiteral) -> Atom? {
        switch x {
        case .int(let i): return .number(Double(i))
        case .double(let d): return .number(d)
        case .string(let s): return .text(s.unicodeScalars.map(\.value))
        case .bool(let b): return .boolean(b)
        case .null: return nil
        }
    }

    static func isEqual(_ v: MetadataValue?, _ x: FilterLiteral) -> Bool {
        if x == .null {
            if v == nil { return true }
            if case .null? = v { return true }
            return false
        }
        return atoms(v).contains(atom(x)!)
    }

    /// -1/0/1 for two atoms of the same orderable kind, nil otherwise.
    static func order(_ a: Atom, _ b: Atom) -> Int? {
        switch (a, b) {
        case (.number(let p), .number(let q)): return p < q ? -1 : (p > q ? 1 : 0)
        case (.text(let p), .text(let q)):
            if p == q { return 0 }
            return p.lexicographicallyPrecedes(q) ? -1 : 1
        default: return nil
        }
    }

    static func leaf(_ v: MetadataValue?, _ c: FilterCondition) -> Bool {
        func range(_ x: FilterLiteral, _ ok: (Int) -> Bool) -> Bool {
            guard let lit = atom(x) else { return false }
            return atoms(v).contains { a in order(a, lit).map(ok) ?? false }
        }
        switch c {
        case .exists: return v != nil
        case .equal(let x): return isEqual(v, x)
        case .notEqual(let x): return !isEqual(v, x)
        case .inList(let xs): return xs.contains { isEqual(v, $0) }
        case .notInList(let xs): return xs.allSatisfy { !isEqual(v, $0) }
        case .less(let x): return range(x) { $0 == -1 }
        case .lessOrEqual(let x): return range(x) { $0 != 1 }
        case .greater(let x): return range(x) { $0 == 1 }
        case .greaterOrEqual(let x): return range(x) { $0 != -1 }
        }
    }

    static func matchingSet(_ f: Filter, _ docs: [Metadata]) -> Set<Int> {
        let everything = Set(docs.indices)
        switch f {
        case .and(let cs): return cs.reduce(everything) { $0.intersection(matchingSet($1, docs)) }
        case .or(let cs): return cs.reduce(Set<Int>()) { $0.union(matchingSet($1, docs)) }
        case .not(let c): return everything.subtracting(matchingSet(c, docs))
        case .field(let key, let c): return Set(docs.indices.filter { leaf(docs[$0][key], c) })
        }
    }
}
