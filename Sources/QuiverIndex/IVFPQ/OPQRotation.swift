import COpenBLAS
import QuiverCore

/// The parameters of OPQ training (`IVFPQParameters.opq`).
public struct OPQParameters: Sendable, Equatable {
    /// Alternations of (train the PQ on the rotated data, solve for the rotation).
    public var iterations: Int
    /// K-means iterations per subspace in each alternation (warm-started from the previous one).
    public var kMeansIterations: Int
    /// Training rows used to learn the rotation (an evenly strided subset of the residual sample).
    public var maxTrainingPoints: Int

    /// The defaults: 10 alternations of 4 k-means iterations on at most 32,768 rows. On bigann10k and
    /// WordNet (docs/benchmarks.md) more alternations changed recall@10 by less than its noise.
    public init(iterations: Int = 10, kMeansIterations: Int = 4, maxTrainingPoints: Int = 32_768) {
        self.iterations = iterations
        self.kMeansIterations = kMeansIterations
        self.maxTrainingPoints = maxTrainingPoints
    }

    func validate() throws {
        guard (1...1000).contains(iterations) else { throw IndexError(.invalidParameter, "OPQ iterations must be in 1...1000, got \(iterations)") }
        guard (1...1000).contains(kMeansIterations) else {
            throw IndexError(.invalidParameter, "OPQ k-means iterations must be in 1...1000, got \(kMeansIterations)")
        }
        guard maxTrainingPoints >= ProductQuantizer.centroidCount else {
            throw IndexError(.invalidParameter, "OPQ needs at least \(ProductQuantizer.centroidCount) training points, got \(maxTrainingPoints)")
        }
    }
}

/// Optimized product quantization (Ge, He, Ke & Sun, 2013; the non-parametric variant): an orthogonal
/// d x d matrix R chosen so that the PQ of x R loses less than the PQ of x. Product quantization cuts
/// the vector into fixed blocks of coordinates; when the variance or the correlations of the data do
/// not line up with those blocks, a rotation that redistributes them lowers the quantization error at
/// the same code size. Distances are unchanged by R (||x R - y R|| = ||x - y||, <x R, y R> = <x, y>),
/// so the rest of the index works on rotated vectors as it would on the originals.
///
/// Convention: row vectors, z = x R; `matrix` is R row-major (entry (i, j) at i * d + j).
///
/// Training alternates two steps that each lower ||X R - Y||_F^2, where Y holds the PQ reconstructions
/// of the rows of X R:
/// 1. R fixed: train the PQ on X R (k-means per subspace, warm-started from the previous alternation)
///    and set Y = decode(encode(X R)).
/// 2. Y fixed: the orthogonal Procrustes problem, min over orthogonal R of ||X R - Y||_F, whose
///    solution is R = U V^T for the SVD X^T Y = U S V^T (LAPACK `sgesvd` from OpenBLAS).
/// It starts from R = I, so the first alternation is plain PQ and the error can only go down from it
/// (up to k-means' own local minima).
///
/// Thread-safety: an immutable value.
struct OPQRotation: Sendable, Equatable {
    let dimension: Int
    /// d * d floats, row-major.
    let matrix: [Float]

    init(dimension: Int, matrix: [Float]) {
        precondition(matrix.count == dimension * dimension)
        self.dimension = dimension
        self.matrix = matrix
    }

    static func identity(_ d: Int) -> OPQRotation {
        var m = [Float](repeating: 0, count: d * d)
        for i in 0..<d { m[i * d + i] = 1 }
        return OPQRotation(dimension: d, matrix: m)
    }

    /// z (n, d) = x (n, d) R (d, d); x and z must not overlap.
    func apply(_ x: UnsafePointer<Float>, rows n: Int, into z: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        let d = dimension
        matrix.withUnsafeBufferPointer { r in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(d),
                        1, x, Int32(d), r.baseAddress!, Int32(d), 0, z, Int32(d))
        }
    }

    /// z = x R for one vector (z_j = sum_i x_i R_ij), as a matrix-vector product with R^T.
    func apply(vector x: UnsafePointer<Float>, into z: UnsafeMutablePointer<Float>) {
        let d = dimension
        matrix.withUnsafeBufferPointer { r in
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(d), Int32(d), 1, r.baseAddress!, Int32(d), x, 1, 0, z, 1)
        }
    }

    /// The rows of `x` rotated, as a new array.
    func applied(_ x: [Float], rows n: Int) -> [Float] {
        var z = [Float](repeating: 0, count: n * dimension)
        x.withUnsafeBufferPointer { xp in
            z.withUnsafeMutableBufferPointer { apply(xp.baseAddress!, rows: n, into: $0.baseAddress!) }
        }
        return z
    }

    /// max |(R^T R - I)_ij|: 0 for an exactly orthogonal R.
    var orthogonalityError: Float {
        let d = dimension
        var g = [Float](repeating: 0, count: d * d)
        matrix.withUnsafeBufferPointer { r in
            g.withUnsafeMutableBufferPointer { gp in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d),
                            1, r.baseAddress!, Int32(d), r.baseAddress!, Int32(d), 0, gp.baseAddress!, Int32(d))
            }
        }
        var worst: Float = 0
        for i in 0..<d {
            for j in 0..<d { worst = max(worst, abs(g[i * d + j] - (i == j ? 1 : 0))) }
        }
        return worst
    }

    /// Learns R on the rows of `x` (n, d) for a PQ of `subspaces` subspaces (see the type's comment).
    /// `pqKMeans` gives the seed, initialization and threads of the per-alternation k-means.
    static func train(_ x: [Float], rows: Int, dimension d: Int, subspaces: Int, parameters: OPQParameters,
                      pqKMeans: KMeansParameters) throws -> OPQRotation {
        try parameters.validate()
        // An evenly strided subset.
        let n = min(rows, parameters.maxTrainingPoints)
        guard n >= ProductQuantizer.centroidCount else {
            throw IndexError(.invalidParameter, "OPQ training needs at least \(ProductQuantizer.centroidCount) vectors, got \(rows)")
        }
        var sample = [Float](repeating: 0, count: n * d)
        x.withUnsafeBufferPointer { xp in
            sample.withUnsafeMutableBufferPointer { s in
                for i in 0..<n { (s.baseAddress! + i * d).update(from: xp.baseAddress! + (i * rows / n) * d, count: d) }
            }
        }
        var kmeans = pqKMeans
        kmeans.iterations = parameters.kMeansIterations
        kmeans.tolerance = 0
        var rotation = identity(d)
        var pq: ProductQuantizer? = nil
        var reconstructed = [Float](repeating: 0, count: n * d)
        var codes = [UInt8](repeating: 0, count: n * subspaces)
        for _ in 0..<parameters.iterations {
            let z = rotation.applied(sample, rows: n)
            let trained = try ProductQuantizer.train(Matrix(dimension: d, storage: z), subspaces: subspaces, parameters: kmeans, warmStart: pq)
            pq = trained
            z.withUnsafeBufferPointer { zp in
                codes.withUnsafeMutableBufferPointer { c in
                    trained.encode(zp.baseAddress!, rows: n, into: c.baseAddress!, threads: pqKMeans.threads)
                    reconstructed.withUnsafeMutableBufferPointer { trained.decode(c.baseAddress!, rows: n, into: $0.baseAddress!) }
                }
            }
            rotation = try procrustes(sample, reconstructed, rows: n, dimension: d)
        }
        return rotation
    }

    /// argmin over orthogonal R of ||X R - Y||_F for X, Y (n, d): R = U V^T where X^T Y = U S V^T.
    static func procrustes(_ x: [Float], _ y: [Float], rows n: Int, dimension d: Int) throws -> OPQRotation {
        // M (d, d) = X^T Y, row-major.
        var m = product(x, transposed: true, y, rows: d, columns: d, inner: n)
        // LAPACK is column-major: it sees the row-major M as A = M^T. With A = U' S V'^T, M = V' S U'^T,
        // so U = V' and V = U', and R = V' U'^T. Read row-major, LAPACK's u buffer is U'^T and its vt
        // buffer is V': R = vt * u, row-major.
        var u = [Float](repeating: 0, count: d * d)
        var vt = [Float](repeating: 0, count: d * d)
        var s = [Float](repeating: 0, count: d)
        var info: Int32 = 0
        var dim = Int32(d)
        var job = CChar(UInt8(ascii: "A"))
        var lwork: Int32 = -1
        var query: Float = 0
        // Workspace query, then the decomposition.
        sgesvd_(&job, &job, &dim, &dim, &m, &dim, &s, &u, &dim, &vt, &dim, &query, &lwork, &info, 1, 1)
        guard info == 0 else { throw IndexError(.invalidParameter, "sgesvd workspace query failed (info \(info))") }
        lwork = Int32(query)
        var work = [Float](repeating: 0, count: max(1, Int(lwork)))
        sgesvd_(&job, &job, &dim, &dim, &m, &dim, &s, &u, &dim, &vt, &dim, &work, &lwork, &info, 1, 1)
        guard info == 0 else { throw IndexError(.invalidParameter, "the SVD of OPQ did not converge (info \(info))") }
        return OPQRotation(dimension: d, matrix: product(vt, transposed: false, u, rows: d, columns: d, inner: d))
    }

    /// The row-major product op(A) B (rows x columns), where op(A) (rows x inner) is A, or A^T for an
    /// A stored as (inner x rows) when `transposed`, and B is (inner x columns).
    private static func product(_ a: [Float], transposed: Bool, _ b: [Float], rows: Int, columns: Int, inner: Int) -> [Float] {
        var c = [Float](repeating: 0, count: rows * columns)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    cblas_sgemm(CblasRowMajor, transposed ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns),
                                Int32(inner), 1, ap.baseAddress!, Int32(transposed ? rows : inner), bp.baseAddress!,
                                Int32(columns), 0, cp.baseAddress!, Int32(columns))
                }
            }
        }
        return c
    }
}
