import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
@testable import QuiverStorage
@testable import Quiver
@testable import QuiverCrashWriter

/// The damage sweep (issue 12, item 6), in the manner of the crash-point sweep: a small database
/// with every kind of file (`DamageFixture`: LMDB's data.mdb and lock.mdb, log files with an
/// unreplayed tail, HNSW and IVF-PQ segment files, a backup with its manifest) is damaged at many
/// points, one at a time, on a fresh copy: bytes changed in every LMDB page header, meta field,
/// log file and record header, segment header word and section boundary, plus random bytes;
/// truncation at many lengths; deletion. For each point a child process (`QuiverCrashWriter
/// --probe`) opens the copy read-only and writable and runs get of every document, ids, count, index,
/// exact and filtered searches, export and verify (a damaged backup: restore first), and writes a
/// summary; the parent classifies the point against the undamaged copy's summary:
///
/// - signal death: the child was killed by a signal;
/// - hang: the child did not finish within `timeout` (it is killed);
/// - clean error: an open (or the restore) refused, naming the cause;
/// - detected: it opened, and verify reported problems or an operation threw;
/// - correct: every result equals the undamaged database's, verify clean;
/// - unacknowledged write dropped: verify clean and every result equals the undamaged database's
///   without the log's last record, a write that was never acknowledged (with `full` durability a
///   write is acknowledged only once its LMDB commit is durable, so the record LMDB has not applied
///   is one whose writer crashed before the acknowledgement; recovery may drop it when it is torn
///   or damaged);
/// - silent wrong answer: verify clean, no operation threw, and some result differs.
///
/// Asserted: no signal death, hang or silent wrong answer in any class of damage, except
/// damage inside LMDB's own structure (meta pages, page headers, branch pages, node headers; LMDB
/// has no page checksums: the stated boundary, counted as `lmdb-meta` and `lmdb-page`) and the classes listed in
/// `knownFailures` (each names the part of issue 12 that removes it).
/// Default: about 300 points; `QUIVER_SOAK=1`: more than 2,000.
struct DamageSweepTests {
    static let soak = ProcessInfo.processInfo.environment["QUIVER_SOAK"] != nil
    /// Far above a probe's run time (under a second); only a hang reaches it.
    static let timeout: TimeInterval = 120

    enum Outcome: String, CaseIterable, Comparable {
        case correct = "correct", unacknowledgedDropped = "unacked write dropped", cleanError = "clean error", detected = "detected", silentWrong = "SILENT WRONG ANSWER"
        case hang = "hang", signal = "signal death"
        static func < (a: Outcome, b: Outcome) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    /// Classes of damage that fail today, with the part of issue 12 that fixes each: the outcomes
    /// allowed, each with the text its detail must contain (nil: any). Remove an entry once its fix
    /// is merged (the sweep prints when a listed class no longer fails).
    static let knownFailures: [String: (allowed: [(Outcome, String?)], reason: String)] = [:]

    /// The stated boundary: LMDB's own page structure, which it cannot check (no page checksums).
    /// A flipped transaction id in a meta page can make LMDB take the older meta page, i.e. the
    /// snapshot before the last commit: read-only opens serve it (the writable open replays the log).
    static let boundary: Set<String> = ["lmdb-page", "lmdb-meta"]

    struct Damage {
        enum Action {
            case xor(offset: Int, mask: UInt8)
            case truncate(Int)
            case delete
            case replace([UInt8])
        }
        /// The class of damage (the figures' rows).
        var kind: String
        /// The file, relative to the fixture directory (`db/...` or `backup/...`).
        var file: String
        var action: Action
        var label: String
    }

    struct Result {
        var damage: Damage
        var outcome: Outcome
        var detail: String
    }

    // MARK: - The sweep

    @Test func everyDamagePointIsFoundOrHarmless() throws {
        let dir = TemporaryDirectory(inMemory: true)
        let fixture = dir.path + "/fixture"
        try FileSystem.createDirectory(fixture)
        try DamageFixture.build(at: fixture + "/db", backup: fixture + "/backup")
        let probe = try builtProduct("QuiverCrashWriter")

        // The undamaged summaries, twice each: the probe must be deterministic for the comparison to mean anything.
        let baseline = try runProbe(probe, fixture: fixture, damage: nil, work: dir.path + "/base-1")
        let again = try runProbe(probe, fixture: fixture, damage: nil, work: dir.path + "/base-2")
        guard case .summary(let base) = baseline, case .summary(let base2) = again else {
            Issue.record("the undamaged probe failed: \(String(describing: baseline))")
            return
        }
        #expect(base == base2, "the probe is not deterministic on the undamaged database")
        let backupBase = try runProbe(probe, fixture: fixture, damage: nil, work: dir.path + "/base-backup", backup: true)
        guard case .summary(let bbase) = backupBase else {
            Issue.record("the undamaged backup probe failed: \(String(describing: backupBase))")
            return
        }
        for summary in [base, bbase] {
            for phase in summary.phases {
                #expect(phase.openError == nil && phase.errors.isEmpty && phase.verifyProblems == [], "the undamaged \(phase.name) phase: \(phase)")
            }
        }
        // The writable phase sees the replayed tail, the read-only one does not.
        #expect(base.phases[0].results["h.count"] != base.phases[1].results["h.count"], "the fixture has no unreplayed log tail")
        // The same database without that unacknowledged last record: the other correct outcome.
        let cut = try lastRecordCut(fixture)
        guard case .summary(let withoutTail) = try runProbe(probe, fixture: fixture, damage: cut, work: dir.path + "/base-no-tail") else {
            Issue.record("the probe failed on the database without its unreplayed record")
            return
        }
        #expect(withoutTail.phases.allSatisfy { $0.openError == nil && $0.errors.isEmpty && $0.verifyProblems == [] }, "without the tail: \(withoutTail)")
        #expect(withoutTail.phases[1].results != base.phases[1].results && withoutTail.phases[1].results["h.count"] == base.phases[0].results["h.count"],
                "cutting the last record does not give the state before the unacknowledged write")

        let points = try damagePoints(fixture)
        let root = dir.path
        let state = SweepState()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            while let i = state.take(), i < points.count {
                let point = points[i]
                let isBackup = point.file.hasPrefix("backup/")
                let result: Result
                do {
                    let run = try runProbe(probe, fixture: fixture, damage: point, work: root + "/w\(worker)", backup: isBackup)
                    result = classify(point, run, baseline: isBackup ? bbase : base, withoutTail: isBackup ? nil : withoutTail)
                } catch {
                    result = Result(damage: point, outcome: .cleanError, detail: "the harness failed: \(error)")
                    Issue.record("damage point \(point.kind) \(point.file) \(point.label): the harness failed: \(error)")
                }
                state.add(result)
            }
        }
        let results = state.results
        report(results)
    }

    /// The work list shared by the two workers.
    final class SweepState: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private(set) var results: [Result] = []
        func take() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            next += 1
            return next - 1
        }
        func add(_ r: Result) {
            lock.lock()
            results.append(r)
            lock.unlock()
        }
    }

    // MARK: - Running a probe

    enum ProbeRun: CustomStringConvertible {
        case summary(DamageFixture.Summary)
        case signal(Int32, String)
        case hang
        case exit(Int32, String)
        var description: String {
            switch self {
            case .summary(let s): return "summary of \(s.phases.count) phases"
            case .signal(let s, _): return "signal \(s)"
            case .hang: return "hang"
            case .exit(let status, let stderr): return "exit \(status): \(stderr)"
            }
        }
    }

    /// Copies the fixture into `work`, applies `damage`, runs the probe on the copy.
    func runProbe(_ probe: String, fixture: String, damage: Damage?, work: String, backup: Bool = false) throws -> ProbeRun {
        try? FileSystem.removeTree(work)
        try FileSystem.createDirectory(work)
        try FileManager.default.copyItem(atPath: fixture + "/db", toPath: work + "/db")
        try FileManager.default.copyItem(atPath: fixture + "/backup", toPath: work + "/backup")
        if let d = damage { try apply(d, in: work) }
        try FileSystem.createDirectory(work + "/scratch")
        let out = work + "/summary.json", errors = work + "/stderr"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: probe)
        p.arguments = ["--probe", backup ? "backup" : "database", work + (backup ? "/backup" : "/db"), work + "/scratch", out]
        FileManager.default.createFile(atPath: errors, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(Self.timeout)
        while p.isRunning && Date() < deadline { usleep(5_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return .hang
        }
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal { return .signal(p.terminationStatus, (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "") }
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: out) else {
            return .exit(p.terminationStatus, (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")
        }
        return .summary(try JSONDecoder().decode(DamageFixture.Summary.self, from: data))
    }

    func apply(_ d: Damage, in work: String) throws {
        let path = work + "/" + d.file
        switch d.action {
        case .xor(let offset, let mask):
            let f = try File(path: path, mode: .readWrite)
            defer { f.close() }
            let b = try f.read(count: 1, at: offset)
            guard b.count == 1 else { throw QuiverError.invalidArgument("offset \(offset) is past the end of \(path)") }
            try f.write([b[0] ^ mask], at: offset)
        case .truncate(let length):
            guard truncate(path, off_t(length)) == 0 else { throw QuiverError.invalidArgument("cannot truncate \(path): errno \(errno)") }
        case .delete:
            try FileSystem.remove(path)
        case .replace(let bytes):
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
    }

    /// The failed assertion and the first frame in Quiver's sources, from the child's crash report.
    static func crashSite(_ stderr: String) -> String {
        let lines = stderr.split(separator: "\n")
        let reason = lines.first { $0.contains("Fatal error") || $0.contains("Assertion") }.map { ": " + $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let frame = lines.first { $0.contains("/Sources/") }.flatMap { line in line.range(of: " in QuiverCrashWriter at ").map { " at " + line[$0.upperBound...].split(separator: "/").suffix(2).joined(separator: "/") + " (" + line.split(separator: " ").dropFirst(3).prefix(3).joined(separator: " ") + ")" } } ?? ""
        return reason + frame
    }

    func classify(_ damage: Damage, _ run: ProbeRun, baseline: DamageFixture.Summary, withoutTail: DamageFixture.Summary? = nil) -> Result {
        switch run {
        case .signal(let s, let stderr): return Result(damage: damage, outcome: .signal, detail: "killed by signal \(s)" + Self.crashSite(stderr))
        case .hang: return Result(damage: damage, outcome: .hang, detail: "no answer in \(Int(Self.timeout)) s")
        // The probe catches every error into its summary: exiting without one is a death too.
        case .exit(let status, let stderr): return Result(damage: damage, outcome: .signal, detail: "the probe exited \(status) without a summary: \(stderr.prefix(300))")
        case .summary(let summary):
            var worst = Outcome.correct
            var details: [String] = []
            for phase in summary.phases {
                let outcome: Outcome
                if let e = phase.openError {
                    outcome = .cleanError
                    details.append("\(phase.name): \(e.prefix(200))")
                } else if !phase.errors.isEmpty || phase.verifyProblems != [] {
                    outcome = .detected
                    details.append("\(phase.name): " + (phase.errors.first.map { "\($0.key): \($0.value.prefix(200))" } ?? "verify: \(phase.verifyProblems?.first?.prefix(200) ?? "")"))
                } else if let expected = baseline.phases.first(where: { $0.name == phase.name }), expected.results == phase.results {
                    outcome = .correct
                } else if let other = withoutTail?.phases.first(where: { $0.name == phase.name }), other.results == phase.results {
                    outcome = .unacknowledgedDropped
                } else {
                    outcome = .silentWrong
                    let expected = baseline.phases.first(where: { $0.name == phase.name })?.results ?? [:]
                    let differing = phase.results.keys.filter { phase.results[$0] != expected[$0] }.sorted()
                    details.append("\(phase.name): verify clean, results differ: \(differing.joined(separator: ", "))")
                }
                worst = max(worst, outcome)
            }
            return Result(damage: damage, outcome: worst, detail: details.joined(separator: "; "))
        }
    }

    // MARK: - The figures and the assertions

    func report(_ results: [Result]) {
        let kinds = Array(Set(results.map(\.damage.kind))).sorted()
        var lines = ["damage sweep: \(results.count) points (\(Self.soak ? "soak" : "default"))",
                     "kind".padding(toLength: 26, withPad: " ", startingAt: 0) + Outcome.allCases.map { $0.rawValue }.joined(separator: " | ")]
        for kind in kinds {
            let mine = results.filter { $0.damage.kind == kind }
            lines.append("\(kind) (\(mine.count))".padding(toLength: 26, withPad: " ", startingAt: 0)
                         + Outcome.allCases.map { o in String(mine.filter { $0.outcome == o }.count) }.joined(separator: " | "))
        }
        print(lines.joined(separator: "\n"))
        let bad: Set<Outcome> = [.signal, .hang, .silentWrong]
        for kind in kinds {
            let mine = results.filter { $0.damage.kind == kind && bad.contains($0.outcome) }
            if Self.boundary.contains(kind) {
                for r in mine.prefix(Self.soak ? 1_000 : 12) { print("  boundary \(kind): \(r.outcome.rawValue) at \(r.damage.file) \(r.damage.label): \(r.detail)") }
                continue
            }
            let allowed = Self.knownFailures[kind]?.allowed ?? []
            func isKnown(_ r: Result) -> Bool { allowed.contains { $0.0 == r.outcome && ($0.1.map { r.detail.contains($0) } ?? true) } }
            for r in mine where !isKnown(r) {
                Issue.record("\(r.outcome.rawValue): \(kind) damage \(r.damage.file) \(r.damage.label): \(r.detail)")
            }
            let known = mine.filter(isKnown)
            if let reason = Self.knownFailures[kind]?.reason {
                print("  known failure \(kind) (\(reason)): \(known.count) point(s)" + (known.isEmpty ? "; none now: remove it from knownFailures" : ""))
                for r in known.prefix(3) { print("    e.g. \(r.damage.file) \(r.damage.label): \(r.detail)") }
            }
        }
    }

    // MARK: - Damage points

    func damagePoints(_ fixture: String) throws -> [Damage] {
        var rng = SplitMix64(seed: 20_261_204)
        var points: [Damage] = []
        points += try lmdbPoints(fixture, "db/lmdb/data.mdb", &rng, backup: false)
        points += lockPoints(&rng)
        points += try walPoints(fixture, &rng)
        for file in try FileSystem.list(fixture + "/db/segments").flatMap({ c in try FileSystem.list(fixture + "/db/segments/" + c).map { "db/segments/\(c)/\($0)" } }) {
            points += try segmentPoints(fixture, file, &rng, kind: file.hasSuffix(".hnsw") ? "hnsw" : "ivfpq")
        }
        points += try backupPoints(fixture, &rng)
        return points
    }

    static func mask(_ rng: inout SplitMix64) -> UInt8 { UInt8.random(in: 1...255, using: &rng) }

    func size(_ path: String) throws -> Int { try File(path: path, mode: .readOnly).size() }

    /// Truncation lengths for a file of `size` bytes: around `marks` (structure boundaries) and the ends.
    func cuts(_ size: Int, marks: [Int]) -> [Int] {
        var out = Set([0, 1, size / 2, size - 1])
        for m in marks { for l in [m - 1, m, m + 1] where l >= 0 && l < size { out.insert(l) } }
        return out.sorted()
    }

    func lmdbPoints(_ fixture: String, _ file: String, _ rng: inout SplitMix64, backup: Bool) throws -> [Damage] {
        let bytes = try File(path: fixture + "/" + file, mode: .readOnly).readAll()
        let map = try LMDBPageMap(bytes)
        #expect(!map.keys.isEmpty && !map.values.isEmpty && map.roles.values.contains(.overflow), "\(file): the page map found no keys, values or overflow pages: \(Set(map.roles.values))")
        let prefix = backup ? "backup-" : ""
        var points: [Damage] = []
        let pages = bytes.count / map.pageSize
        // The meta pages: header flags and every field LMDB reads.
        let metaFields = [(10, "page flags"), (16, "magic"), (20, "version"), (40, "page size"), (80, "free root"),
                          (128, "main root"), (136, "last page"), (144, "transaction id")]
        for page in 0..<2 where !backup || page == 0 {
            for (offset, name) in metaFields {
                points.append(Damage(kind: prefix + "lmdb-meta", file: file, action: .xor(offset: page * map.pageSize + offset, mask: Self.mask(&rng)), label: "meta page \(page) \(name)"))
            }
        }
        // Every page header (default: one field per page, in turn; soak: every field).
        let headerFields = [(0, "pgno"), (10, "flags"), (12, "lower"), (14, "upper")]
        let pageStride = Self.soak ? (backup ? 2 : 1) : backup ? 8 : 2
        for page in stride(from: 2, to: pages, by: pageStride) {
            let fields = Self.soak ? headerFields : [headerFields[page % 4]]
            for (offset, name) in fields {
                let kind = map.role(page) == .unused ? "lmdb-free" : "lmdb-page"
                points.append(Damage(kind: prefix + kind, file: file, action: .xor(offset: page * map.pageSize + offset, mask: Self.mask(&rng)),
                                     label: "page \(page) (\(map.role(page))) header \(name)"))
            }
        }
        // Random bytes.
        for _ in 0..<(Self.soak ? (backup ? 200 : 500) : backup ? 8 : 40) {
            let offset = Int.random(in: (2 * map.pageSize)..<bytes.count, using: &rng)
            let what = map.classify(offset)
            points.append(Damage(kind: prefix + what.kind, file: file, action: .xor(offset: offset, mask: Self.mask(&rng)), label: "byte \(offset) (\(what.label))"))
        }
        // Truncation and deletion.
        let lengths = Self.soak ? Array(Set(cuts(bytes.count, marks: []) + stride(from: 0, to: bytes.count, by: map.pageSize).map { $0 } + [100, 6_000])).sorted()
                                : [0, 100, 4_096, 6_000, 8_192, 3 * 4_096 + 17, bytes.count / 2, bytes.count - 4_096, bytes.count - 1]
        for l in lengths where l < bytes.count && (!backup || Self.soak || [0, 6_000, bytes.count / 2].contains(l)) {
            points.append(Damage(kind: prefix + "lmdb-truncated", file: file, action: .truncate(l), label: "truncated to \(l) of \(bytes.count) bytes"))
        }
        points.append(Damage(kind: prefix + "lmdb-truncated", file: file, action: .delete, label: "deleted"))
        points.append(Damage(kind: prefix + "lmdb-truncated", file: file, action: .replace(Array("not an LMDB file\n".utf8)), label: "replaced by text"))
        return points
    }

    func lockPoints(_ rng: inout SplitMix64) -> [Damage] {
        let file = "db/lmdb/lock.mdb"
        var points: [Damage] = []
        for offset in [0, 4, 8, 16, 64, 128, 4_096] + (0..<(Self.soak ? 20 : 2)).map({ _ in Int.random(in: 0..<32_896, using: &rng) }) {
            points.append(Damage(kind: "lmdb-lock", file: file, action: .xor(offset: offset, mask: Self.mask(&rng)), label: "byte \(offset)"))
        }
        for l in [0, 10, 4_096] { points.append(Damage(kind: "lmdb-lock", file: file, action: .truncate(l), label: "truncated to \(l)")) }
        points.append(Damage(kind: "lmdb-lock", file: file, action: .delete, label: "deleted"))
        points.append(Damage(kind: "lmdb-lock", file: file, action: .replace((0..<32_896).map { _ in UInt8.random(in: 0...255, using: &rng) }), label: "replaced by random bytes"))
        return points
    }

    /// Log files: every file header field, every record header field (default: one per record, in
    /// turn), random payload bytes, truncation at record boundaries, deletion. Damage to the last
    /// record (the one LMDB has not applied) is the class `wal-tail`.
    func walPoints(_ fixture: String, _ rng: inout SplitMix64) throws -> [Damage] {
        let names = try FileSystem.list(fixture + "/db/wal").filter { $0.hasSuffix(".wal") }.sorted()
        var points: [Damage] = []
        let recordFields = [(0, "crc"), (4, "length"), (8, "sequence"), (16, "type")]
        let headerFields = [(0, "magic"), (8, "version"), (12, "sequence"), (20, "crc")]
        for (n, name) in names.enumerated() {
            let file = "db/wal/" + name
            let bytes = try File(path: fixture + "/" + file, mode: .readOnly).readAll()
            let last = n == names.count - 1
            for (i, (offset, field)) in headerFields.enumerated() where Self.soak || i == n % 4 || last {
                points.append(Damage(kind: "wal", file: file, action: .xor(offset: offset, mask: Self.mask(&rng)), label: "file header \(field)"))
            }
            // The records.
            let (starts, end) = Self.recordStarts(bytes)
            #expect(end == bytes.count, "\(file): the records do not end at the end of the file")
            for (r, start) in starts.enumerated() {
                let isTail = last && r == starts.count - 1
                let kind = isTail ? "wal-tail" : "wal"
                for (i, (offset, field)) in recordFields.enumerated() where Self.soak || isTail || i == r % 4 {
                    points.append(Damage(kind: kind, file: file, action: .xor(offset: start + offset, mask: Self.mask(&rng)), label: "record \(r) header \(field)"))
                }
                let end = r + 1 < starts.count ? starts[r + 1] : bytes.count
                for _ in 0..<(Self.soak ? 8 : 1) where end > start + 17 {
                    let offset = Int.random(in: (start + 17)..<end, using: &rng)
                    points.append(Damage(kind: kind, file: file, action: .xor(offset: offset, mask: Self.mask(&rng)), label: "record \(r) payload byte \(offset)"))
                }
            }
            let lengths = Self.soak ? cuts(bytes.count, marks: [24] + starts) : [0, 10, 24, starts.last.map { $0 + 5 } ?? 30, bytes.count - 1]
            for l in lengths where l < bytes.count {
                // Any cut of the last file cuts into its last record, the unreplayed tail.
                points.append(Damage(kind: last ? "wal-tail" : "wal", file: file, action: .truncate(l), label: "truncated to \(l) of \(bytes.count)"))
            }
            points.append(Damage(kind: last ? "wal-tail" : "wal", file: file, action: .delete, label: "deleted"))
        }
        return points
    }

    /// The log's last record cut off (its file truncated where the record starts): the database
    /// as it is when the write that record holds, never acknowledged, is dropped.
    func lastRecordCut(_ fixture: String) throws -> Damage {
        guard let name = try FileSystem.list(fixture + "/db/wal").filter({ $0.hasSuffix(".wal") }).sorted().last else {
            throw QuiverError.invalidArgument("the fixture has no log file")
        }
        let bytes = try File(path: fixture + "/db/wal/" + name, mode: .readOnly).readAll()
        return Damage(kind: "wal-tail", file: "db/wal/" + name, action: .truncate(Self.recordStarts(bytes).starts.last ?? 24), label: "cut at its last record")
    }

    /// The offsets of a log file's records (after its 24-byte header; each record a 17-byte header
    /// whose bytes 4-7 are the payload length, then the payload), and where the last one ends.
    static func recordStarts(_ bytes: [UInt8]) -> (starts: [Int], end: Int) {
        var starts: [Int] = []
        var at = 24
        while at + 17 <= bytes.count {
            starts.append(at)
            at += 17 + (Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24)
        }
        return (starts, at)
    }

    /// Segment files: header words, the section table, each section's first and last byte, random
    /// bytes, truncation at section boundaries, deletion.
    func segmentPoints(_ fixture: String, _ file: String, _ rng: inout SplitMix64, kind: String) throws -> [Damage] {
        let bytes = try File(path: fixture + "/" + file, mode: .readOnly).readAll()
        let tableOffset = kind == "hnsw" ? 96 : 64
        var sections: [(Int, Int)] = []
        for s in 0..<6 {
            let e = tableOffset + 24 * s
            let offset = (0..<8).reduce(0) { $0 | Int(bytes[e + $1]) << (8 * $1) }
            let length = (0..<8).reduce(0) { $0 | Int(bytes[e + 8 + $1]) << (8 * $1) }
            sections.append((offset, length))
        }
        var points: [Damage] = []
        for offset in stride(from: 0, to: 256, by: Self.soak ? 1 : 16) {
            points.append(Damage(kind: kind, file: file, action: .xor(offset: offset, mask: Self.mask(&rng)), label: "header byte \(offset)"))
        }
        for (s, (offset, length)) in sections.enumerated() where length > 0 {
            for o in Set([offset, offset + length - 1, offset + length / 2]) {
                points.append(Damage(kind: kind, file: file, action: .xor(offset: o, mask: Self.mask(&rng)), label: "section \(s) byte \(o)"))
            }
        }
        for _ in 0..<(Self.soak ? 150 : 10) {
            let o = Int.random(in: 256..<bytes.count, using: &rng)
            points.append(Damage(kind: kind, file: file, action: .xor(offset: o, mask: Self.mask(&rng)), label: "byte \(o)"))
        }
        let marks = [256] + sections.flatMap { [$0.0, $0.0 + $0.1] }
        let lengths = Self.soak ? cuts(bytes.count, marks: marks) : [0, 100, 255, 256, sections[0].0 + sections[0].1 / 2, bytes.count - 1]
        for l in lengths where l < bytes.count {
            points.append(Damage(kind: kind, file: file, action: .truncate(l), label: "truncated to \(l) of \(bytes.count)"))
        }
        points.append(Damage(kind: kind, file: file, action: .delete, label: "deleted"))
        return points
    }

    /// The backup: its manifest, its LMDB file and its segment files; the probe restores it first.
    func backupPoints(_ fixture: String, _ rng: inout SplitMix64) throws -> [Damage] {
        var points: [Damage] = []
        let manifest = try File(path: fixture + "/backup/BACKUP", mode: .readOnly).readAll()
        for _ in 0..<(Self.soak ? 60 : 6) {
            let o = Int.random(in: 0..<manifest.count, using: &rng)
            points.append(Damage(kind: "backup", file: "backup/BACKUP", action: .xor(offset: o, mask: Self.mask(&rng)), label: "manifest byte \(o)"))
        }
        for l in [0, manifest.count / 2, manifest.count - 1] {
            points.append(Damage(kind: "backup", file: "backup/BACKUP", action: .truncate(l), label: "manifest truncated to \(l)"))
        }
        points.append(Damage(kind: "backup", file: "backup/BACKUP", action: .delete, label: "manifest deleted"))
        points += try lmdbPoints(fixture, "backup/lmdb/data.mdb", &rng, backup: true).map { var d = $0; d.kind = "backup"; d.label = "data.mdb " + d.label; return d }
        for c in try FileSystem.list(fixture + "/backup/segments") {
            for f in try FileSystem.list(fixture + "/backup/segments/" + c) {
                let file = "backup/segments/\(c)/\(f)"
                let size = try size(fixture + "/" + file)
                for _ in 0..<(Self.soak ? 20 : 2) {
                    let o = Int.random(in: 0..<size, using: &rng)
                    points.append(Damage(kind: "backup", file: file, action: .xor(offset: o, mask: Self.mask(&rng)), label: "segment byte \(o)"))
                }
                points.append(Damage(kind: "backup", file: file, action: .truncate(size / 2), label: "segment truncated to \(size / 2)"))
                points.append(Damage(kind: "backup", file: file, action: .delete, label: "segment deleted"))
            }
        }
        return points
    }
}

/// Which page of an LMDB file (0.9 layout, 64-bit: see `LMDBFileCheck`) plays which part, and
/// which bytes of the tables' leaf pages are keys and values, from a walk of every tree of the
/// newest meta page.
struct LMDBPageMap {
    enum Role: String { case meta, freeList = "free list", mainTree = "main tree", branch, leaf, overflow, unused }
    let pageSize: Int
    private(set) var roles: [Int: Role] = [:]
    /// Byte ranges of the tables' keys and of their values (inline or on overflow pages).
    private(set) var keys: [Range<Int>] = []
    private(set) var values: [Range<Int>] = []

    init(_ b: [UInt8]) throws {
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        pageSize = u32(16 + 24)
        guard pageSize >= 512, b.count >= 2 * pageSize else { throw QuiverError.invalidArgument("not an LMDB file") }
        let m = u64(16 + 128) >= u64(pageSize + 16 + 128) ? 16 : pageSize + 16
        roles[0] = .meta
        roles[1] = .meta
        let freeRoot = u64(m + 24 + 40), mainRoot = u64(m + 72 + 40)
        let invalid = -1
        var stack: [(Int, Role)] = []  // (page, the tree: .freeList, .mainTree or .leaf for a table)
        if freeRoot != invalid { stack.append((freeRoot, .freeList)) }
        if mainRoot != invalid { stack.append((mainRoot, .mainTree)) }
        var seen = Set<Int>()
        while let (page, tree) = stack.popLast() {
            guard page >= 2, (page + 1) * pageSize <= b.count, seen.insert(page).inserted else { continue }
            let p = page * pageSize
            let flags = u16(p + 10), count = (u16(p + 12) - 16) >> 1
            let isBranch = flags & 0x01 != 0
            roles[page] = tree == .leaf ? (isBranch ? .branch : .leaf) : tree
            for i in 0..<count {
                let node = p + u16(p + 16 + 2 * i)
                let lo = u16(node), hi = u16(node + 2), nodeFlags = u16(node + 4), keySize = u16(node + 6)
                if isBranch {
                    stack.append((lo | hi << 16 | nodeFlags << 32, tree))
                    continue
                }
                let dataSize = lo | hi << 16, data = node + 8 + keySize
                if tree == .mainTree && nodeFlags & 0x02 != 0 {  // F_SUBDATA: a table's MDB_db
                    let root = u64(data + 40)
                    if root != invalid { stack.append((root, .leaf)) }
                    continue
                }
                if nodeFlags & 0x01 != 0 {  // F_BIGDATA: the value is on overflow pages
                    let first = u64(data), pages = u32(first * pageSize + 12)
                    for q in first..<(first + max(1, pages)) { roles[q] = tree == .leaf ? .overflow : tree }
                    if tree == .leaf {
                        keys.append((node + 8)..<data)
                        values.append((first * pageSize + 16)..<(first * pageSize + 16 + dataSize))
                    }
                    continue
                }
                if tree == .leaf {
                    keys.append((node + 8)..<data)
                    values.append(data..<(data + dataSize))
                }
            }
        }
    }

    func role(_ page: Int) -> Role { roles[page] ?? .unused }

    /// The class of a damaged byte: a table's value or key, LMDB's own structure, or an unused page.
    func classify(_ offset: Int) -> (kind: String, label: String) {
        let role = role(offset / pageSize)
        if values.contains(where: { $0.contains(offset) }) { return ("lmdb-value", "a stored value, \(role.rawValue) page") }
        if keys.contains(where: { $0.contains(offset) }) { return ("lmdb-key", "a stored key") }
        if role == .unused { return ("lmdb-free", "an unused page") }
        return ("lmdb-page", "LMDB structure of a \(role.rawValue) page")
    }
}
