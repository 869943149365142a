import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// The example of docs/library.md, "Diversity and grouping": the doc's block is this file's
/// `venuesAndVariety`, verbatim, and it is run over the example papers against the references of
/// GroupingTests and DiversityTests.
struct SearchShapeDocTests {
    @Test func docShowsThisFilesFunction() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let parts = doc.components(separatedBy: "## Diversity and grouping")
        try #require(parts.count == 2)
        let block = parts[1].components(separatedBy: "```swift\n")[1].components(separatedBy: "```")[0]
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        #expect(source.contains(block), "docs/library.md's example should be venuesAndVariety in this file, verbatim")
    }

    @Test func exampleRunsAndAgreesWithTheReferences() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let papers = try DiversityTests.papersCollection(db)
        let question = "vitamin D and bone density"
        let (venues, variety) = try venuesAndVariety(papers, question: question)
        let ranked = try papers.search(text: question, k: 30, mode: .hybrid)
        let expected = GroupingTests.reference(ranked, field: "venue", k: 3, size: 2)
        #expect(venues.map(\.value) == expected.map(\.0) && venues.map { $0.hits.map(\.id) } == expected.map(\.1))
        #expect(venues.count == 3 && venues.allSatisfy { $0.hits.count == 2 })
        let candidates = try papers.search(text: question, k: 25, options: SearchOptions(includeVector: true))
        #expect(variety.map(\.id) == DiversityTests.reference(candidates, k: 5, diversity: 0.5, cosineScores: true, higherIsBetter: true))
    }
}

/// For a question: the three venues with the nearest papers, two papers each, and five papers
/// that do not repeat each other.
func venuesAndVariety(_ papers: Collection, question: String) throws -> (venues: [SearchGroup], variety: [SearchResult]) {
    let venues = try papers.searchGroups(text: question, k: 3, mode: .hybrid,
                                         options: SearchOptions(groupBy: "venue", groupSize: 2))
    for group in venues {
        print(group.value, group.hits.map(\.id))
    }
    let variety = try papers.search(text: question, k: 5, options: SearchOptions(diversity: 0.5))
    return (venues, variety)
}
