import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
import QuiverStorage
@testable import Quiver
@testable import QuiverCrashWriter

extension MultiProcessTests {
    /// `quiver backup` while another process writes batches (and seals and merges 16-vector
    /// segments): each backup restores (`quiver restore` verifies it), and holds exactly the state
    /// after a whole prefix of the writer's batches, between those acknowledged before the backup
    /// and after it (plus the one in flight): every document of batches 0..<n as that batch left it,
    /// nothing of a later batch.
    @Test func backupBesideAWriterProcessRestoresAPrefix() throws {
        let dir = TemporaryDirectory()
        let seed: UInt64 = 31
        let workload = CrashWorkload(seed: seed)
        let (child, db, acks) = try startWriter(dir.path, seed: seed)
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        #expect(child.isRunning && acknowledged(acks) >= 5, "the writer child did not start writing")
        let cli = CLI(db: db)
        let pool = (0..<CrashWorkload.idPool).map { "doc-\($0)" }
        var prefixes: [Int] = [], files: [Int] = []
        for round in 0..<3 {
            let before = acknowledged(acks)
            let backup = try cli.run(["backup", dir.path + "/backup-\(round)", "--json"])
            let after = acknowledged(acks)
            #expect(backup.status == 0, "backup beside the writer: \(backup.stderr)")
            guard backup.status == 0 else { continue }
            let report = try JSONDecoder().decode(BackupReport.self, from: Data(backup.stdout.utf8))
            files.append(report.files)
            let restore = try cli.run(["restore", dir.path + "/backup-\(round)", dir.path + "/restored-\(round)"])
            #expect(restore.status == 0 && restore.stdout.contains("verify: OK"), "\(restore.stdout)\(restore.stderr)")
            let restored = try Database(path: dir.path + "/restored-\(round)", options: DatabaseOptions(readOnly: true))
            defer { restored.close() }
            #expect(try restored.verify().ok)
            let c = try restored.collection(CrashWorkload.collection)
            var stored: [String: Document] = [:]
            for (id, d) in zip(pool, try c.get(ids: pool)) { if let d { stored[id] = d } }
            let k = (before...(after + 1)).first { workload.state(after: $0) == stored }
            #expect(k != nil, "backup \(round) (\(stored.count) documents) is the state after no prefix of batches between \(before) and \(after + 1)")
            if let k { prefixes.append(k) }
            // Its segments answer searches as the exact scan does.
            let q: [Float] = [0.5, -0.5, 0.25, 0, 1, -1, 0.75, 0.1]
            let exact = try c.search(vector: q, k: 5, options: SearchOptions(exact: true)).map(\.id)
            var options = SearchOptions()
            options.efSearch = 500
            #expect(try c.search(vector: q, k: 5, options: options).map(\.id) == exact)
            usleep(200_000)
        }
        #expect(child.isRunning, "the writer child stopped")
        print("backup beside a writer process: backups hold the first \(prefixes) batches (\(files) files); the writer acknowledged \(acknowledged(acks))")
        // The first backup may come before the writer's first seal; later ones hold segment files.
        #expect(files.last ?? 0 >= 2, "no segment file in the last backup: \(files)")
        #expect(prefixes.count == 3 && prefixes == prefixes.sorted() && prefixes.last! > prefixes.first!, "\(prefixes)")
    }
}
