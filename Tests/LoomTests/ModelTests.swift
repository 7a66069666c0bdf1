import Foundation
import LoomCore
import LoomData
import LoomModels
import Testing

/// The built-in model families, metrics and the model file, in-process.
@Suite("Built-in models")
struct ModelTests {
    /// A frame from columns.
    static func frame(_ columns: [(String, Frame.Column)]) -> Frame {
        let n: Int = switch columns[0].1 {
        case .numbers(let v): v.count
        case .categories(let c, _): c.count
        }
        return Frame(names: columns.map(\.0), columns: columns.map(\.1), rowCount: n)
    }

    static func normals(_ n: Int, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            // Box-Muller.
            let u = (Double(rng.next() >> 11) + 0.5) / Double(1 << 53)
            let v = (Double(rng.next() >> 11) + 0.5) / Double(1 << 53)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
    }

    static func read(_ csv: String) throws -> Frame {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        return try Frame.read(try TableFiles.list(try DataFiles.write(dir, "t.csv", csv))).0
    }

    @Test func ridgeRecoversExactCoefficientsAndTheClosedFormPenalty() throws {
        let a = Self.normals(500, seed: 1)
        let b = Self.normals(500, seed: 2).map { $0 * 10 + 3 }
        let y = zip(a, b).map { 3 + 2 * $0 - 0.5 * $1 }
        let x = FeatureMatrix(count: 500, width: 2, values: zip(a, b).flatMap { [$0, $1] })
        let fit = try RidgeRegression.fit(x, y, l2: 0)
        #expect(abs(fit.coefficients[0][0] - 2) < 1e-9 && abs(fit.coefficients[0][1] + 0.5) < 1e-9 && abs(fit.intercepts[0] - 3) < 1e-8)
        // One feature: w = Σ(x−x̄)(y−ȳ) / (Σ(x−x̄)² + α).
        let one = FeatureMatrix(count: 500, width: 1, values: a)
        let ma = a.reduce(0, +) / 500
        let my = y.reduce(0, +) / 500
        let sxy = zip(a, y).reduce(0.0) { $0 + ($1.0 - ma) * ($1.1 - my) }
        let sxx = a.reduce(0.0) { $0 + ($1 - ma) * ($1 - ma) }
        let penalised = try RidgeRegression.fit(one, y, l2: 50)
        #expect(abs(penalised.coefficients[0][0] - sxy / (sxx + 50)) < 1e-10)
        #expect(abs(penalised.intercepts[0] - (my - ma * sxy / (sxx + 50))) < 1e-10)
    }

    /// At the optimum of Σ log-loss + l2/2‖w‖² the gradient vanishes: Σ (p − y) x + l2 w = 0
    /// and Σ (p − y) = 0. Checked on the raw features, independently of the optimiser.
    @Test(arguments: [2, 3])
    func logisticRegressionReachesTheOptimum(classes: Int) throws {
        let n = 2000
        let a = Self.normals(n, seed: 3)
        let b = Self.normals(n, seed: 4).map { $0 * 5 + 1 }
        var rng = SplitMix64(seed: 5)
        let labels: [Int32] = (0..<n).map { i in
            let s = 1.2 * a[i] - 0.3 * b[i] + 0.2
            let u = Double(rng.next() >> 11) / Double(1 << 53)
            if classes == 2 { return u < 1 / (1 + exp(-s)) ? 1 : 0 }
            return s < -0.8 ? 0 : (u < 0.7 ? (s > 0.5 ? 2 : 1) : Int32(rng.next() % 3))
        }
        let x = FeatureMatrix(count: n, width: 2, values: (0..<n).flatMap { [a[$0], b[$0]] })
        let l2 = 3.0
        let fit = try LogisticRegression.fit(x, labels: labels, classes: classes, l2: l2)
        #expect(fit.converged == true)
        let k = fit.intercepts.count
        #expect(k == (classes == 2 ? 1 : classes))
        var gradient = [[Double]](repeating: [0, 0, 0], count: k)
        for i in 0..<n {
            let scores = (0..<k).map { c in fit.intercepts[c] + fit.coefficients[c][0] * a[i] + fit.coefficients[c][1] * b[i] }
            let p: [Double]
            if k == 1 {
                p = [1 / (1 + exp(-scores[0]))]
            } else {
                let top = scores.max()!
                let e = scores.map { exp($0 - top) }
                p = e.map { $0 / e.reduce(0, +) }
            }
            for c in 0..<k {
                let target: Double = k == 1 ? (labels[i] == 1 ? 1 : 0) : (Int(labels[i]) == c ? 1 : 0)
                gradient[c][0] += (p[c] - target) * a[i]
                gradient[c][1] += (p[c] - target) * b[i]
                gradient[c][2] += p[c] - target
            }
        }
        for c in 0..<k {
            #expect(abs(gradient[c][0] + l2 * fit.coefficients[c][0]) < 1e-4)
            #expect(abs(gradient[c][1] + l2 * fit.coefficients[c][1]) < 1e-4)
            #expect(abs(gradient[c][2]) < 1e-4)
        }
    }

    /// Trees learn an interaction that no linear model can, and where missing values go.
    @Test func gradientBoostingLearnsInteractionsAndMissingValues() throws {
        let n = 6000
        var x0 = Self.normals(n, seed: 6)
        let x1 = Self.normals(n, seed: 7)
        var label: [String] = []
        for i in 0..<n {
            if i % 10 == 0 { x0[i] = .nan }
            let positive = x0[i].isNaN ? true : ((x0[i] > 0.3) != (x1[i] > -0.2))
            label.append(positive ? "yes" : "no")
        }
        let frame = Self.frame([("x0", .numbers(x0)), ("x1", .numbers(x1)), ("label", .categories(codes: label.map { $0 == "yes" ? 1 : 0 }, levels: ["no", "yes"]))])
        var options = TrainingOptions(family: .gbdt, target: "label")
        options.gbdt.earlyStopping = .off
        let train = frame.rows(Array(0..<5000))
        let test = frame.rows(Array(5000..<n))
        let result = try Trainer.train(train, validation: test, options: options)
        #expect(result.model.task == .binary && result.model.classes == ["no", "yes"])
        guard case .classification(let m) = try #require(result.validation) else { Issue.record("not a classification"); return }
        #expect(m.accuracy > 0.97)
        let missingRows = (5000..<n).filter { x0[$0].isNaN }
        let p = try result.model.predict(frame.rows(missingRows))
        #expect(p.labels.allSatisfy { $0 == 1 })
        // Logistic regression cannot fit XOR: far worse.
        let linear = try Trainer.train(train, validation: test, options: TrainingOptions(family: .logistic, target: "label"))
        guard case .classification(let lm) = try #require(linear.validation) else { return }
        #expect(lm.accuracy < 0.8)
    }

    @Test func gradientBoostingRegressionMulticlassAndEarlyStopping() throws {
        let n = 12_000
        let x = Self.normals(n, seed: 8)
        let noise = Self.normals(n, seed: 9)
        let y = (0..<n).map { (x[$0] > 0 ? 2.0 : -1.0) + 0.1 * noise[$0] }
        let frame = Self.frame([("x", .numbers(x)), ("y", .numbers(y)), ("noise", .numbers(noise))])
        var options = TrainingOptions(family: .gbdt, target: "y")
        options.exclude = ["noise"]
        let result = try Trainer.train(frame, options: options)
        guard case .regression(let r) = result.training else { Issue.record("not a regression"); return }
        #expect(result.model.task == .regression && r.rmse < 0.15 && r.r2 > 0.99)
        // A target of pure noise: validation loss stops improving, training stops early.
        var noiseOptions = TrainingOptions(family: .gbdt, target: "noise")
        noiseOptions.exclude = ["y"]
        noiseOptions.gbdt.maxIterations = 200
        let stopped = try Trainer.train(frame, options: noiseOptions)
        #expect(stopped.stoppedEarly && (stopped.iterations ?? 200) < 200)
        #expect(stopped.model.ensemble?.validationLoss?.count == (stopped.iterations ?? 0) + 1)
        // Three classes from thresholds.
        let codes: [Int32] = x.map { $0 < -0.5 ? 0 : ($0 < 0.5 ? 1 : 2) }
        let three = Self.frame([("x", .numbers(x)), ("c", .categories(codes: codes, levels: ["low", "mid", "high"]))])
        let multi = try Trainer.train(three, options: TrainingOptions(family: .gbdt, target: "c"))
        #expect(multi.model.task == .multiclass && multi.model.classes == ["high", "low", "mid"])
        guard case .classification(let m) = multi.training else { return }
        #expect(m.accuracy > 0.99 && m.confusion.count == 3)
    }

    @Test func metricsMatchHandComputedValues() {
        // Scores .1 .4 .35 .8 for labels 0 0 1 1: 3 of 4 positive-negative pairs ordered.
        let p: [Double] = [0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8]
        let m = ClassificationMetrics(labels: [0, 0, 1, 1], probabilities: p, classNames: ["n", "p"])
        #expect(abs(m.rocAuc! - 0.75) < 1e-12)
        #expect(m.confusion == [[2, 0], [1, 1]])
        #expect(abs(m.accuracy - 0.75) < 1e-12)
        #expect(abs(m.classes[1].precision - 1) < 1e-12 && abs(m.classes[1].recall - 0.5) < 1e-12)
        #expect(abs(m.classes[0].precision - 2.0 / 3) < 1e-12 && abs(m.classes[0].f1 - 0.8) < 1e-12)
        let expectedLoss = -(log(0.9) + log(0.6) + log(0.35) + log(0.8)) / 4
        #expect(abs(m.logLoss - expectedLoss) < 1e-12)
        // Tied scores count half.
        let tied = ClassificationMetrics(labels: [0, 1], probabilities: [0.5, 0.5, 0.5, 0.5], classNames: ["a", "b"])
        #expect(tied.rocAuc == 0.5)
        let r = RegressionMetrics(actual: [1, 2, 3, 4], predicted: [1, 2, 3, 6])
        #expect(r.mae == 0.5 && r.mse == 1 && r.rmse == 1 && abs(r.r2 - 0.2) < 1e-12)
    }

    @Test func modelFilesRoundTripAndDamagedOnesAreRefused() throws {
        let frame = try Self.read("a,b,color,y\n1,2,red,3.5\n2,1,blue,4\n3,5,red,9\n4,4,green,10\n5,3,blue,8.5\n6,7,red,15\n")
        // Six rows: leaves of one row, so that the trees really split.
        let options = TrainingOptions(family: .gbdt, target: "y").with { $0.gbdt.minSamplesLeaf = 1 }
        let result = try Trainer.train(frame, options: options)
        let firstTree = try #require(result.model.ensemble?.trees.first?.first)
        #expect(firstTree.feature.count > 1)
        let data = try result.model.encoded()
        let back = try LoomModel.decode(data)
        let predicted = try back.predict(frame).values
        #expect(predicted == (try result.model.predict(frame).values))
        #expect(Set(predicted).count > 1)
        let text = try #require(String(data: data, encoding: .utf8))
        #expect(text.contains("\"format\":\"loom-model\"") && text.contains("\"format_version\":1") && text.contains("\"min_samples_leaf\""))
        #expect(throws: LoomError.self) { try LoomModel.decode(Data("{\"hello\":1}".utf8)) }
        #expect(throws: LoomError.self) { try LoomModel.decode(Data(text.replacingOccurrences(of: "\"format_version\":1", with: "\"format_version\":9").utf8)) }
        // A linear model whose coefficients do not match its features.
        let linear = try Trainer.train(frame, options: TrainingOptions(family: .linear, target: "y"))
        var broken = linear.model
        broken.linear?.coefficients[0].removeLast()
        #expect(throws: LoomError.self) { try LoomModel.decode(try broken.encoded()) }
        // A tree node pointing back at its parent would loop forever.
        var loop = result.model
        var tree = firstTree
        tree.left[0] = 0
        loop.ensemble?.trees[0][0] = tree
        #expect(throws: LoomError.self) { try LoomModel.decode(try loop.encoded()) }
    }

    @Test func featuresComeFromColumnsByName() throws {
        let frame = try Self.read("id,x,color,y\n1,1,red,1\n2,2,blue,0\n3,,red,1\n4,4,blue,0\n5,5,green,1\n6,6,blue,0\n")
        var options = TrainingOptions(family: .logistic, target: "y")
        options.exclude = ["id"]
        let model = try Trainer.train(frame, options: options).model
        #expect(model.features == ["x", "color=blue", "color=green", "color=red"])
        #expect(model.inputs[0].fill == 18.0 / 5)
        // Other columns, other order, an unseen colour: predicted all the same.
        let other = try Self.read("color,x,extra\npurple,3,z\nred,1,z\n")
        let p = try model.predict(other)
        #expect(p.count == 2 && p.probabilities.count == 4)
        // Linear models score straight from the columns; the feature matrix gives the same.
        let viaMatrix = model.predict(try FeatureEncoding.matrix(other, inputs: model.inputs))
        #expect(zip(p.probabilities, viaMatrix.probabilities).allSatisfy { abs($0 - $1) < 1e-12 })
        let again = try model.predict(frame)
        let againViaMatrix = model.predict(try FeatureEncoding.matrix(frame, inputs: model.inputs))
        #expect(zip(again.probabilities, againViaMatrix.probabilities).allSatisfy { abs($0 - $1) < 1e-12 })
        let numbersAsText = try Self.read("x,color\nabc,red\n")
        #expect(throws: LoomError.self) { try model.predict(numbersAsText) }
        let missingColumn = try Self.read("x\n1\n")
        #expect(throws: LoomError.self) { try model.predict(missingColumn) }
        // A column that turns to text half-way keeps its earlier numbers as text.
        let mixed = try Self.read("v\n1\n2.5\nabc\n")
        guard case .categories(let codes, let levels) = mixed.columns[0] else { Issue.record("should be text"); return }
        #expect(codes.map { levels[Int($0)] } == ["1", "2.5", "abc"])
    }

    @Test func badTrainingDataGetsClearErrors() throws {
        func message(_ csv: String, _ options: TrainingOptions) throws -> String {
            do {
                _ = try Trainer.train(try Self.read(csv), options: options)
                return "no error"
            } catch let e as LoomError {
                return "\(e)"
            }
        }
        let g = TrainingOptions(family: .gbdt, target: "y")
        #expect(try message("a,b\n1,2\n", g).contains("no target column y"))
        #expect(try message("a,y\n1,5\n2,5\n", TrainingOptions(family: .linear, target: "y")).contains("constant"))
        #expect(try message("a,y\n1,1\n2,1\n", g).contains("one class"))
        #expect(try message("a,y\n1,1\n2,\n3,0\n", g).contains("missing in 1 of 3 rows"))
        #expect(try message("a,y\n1,x\n2,z\n", TrainingOptions(family: .linear, target: "y")).contains("holds text"))
        #expect(try message("a,y\n1,1\n2,0\n", TrainingOptions(family: .linear, target: "y").with { $0.task = .classification }).contains("predicts numbers"))
        #expect(try message("a,y\ninf,1\n2,0\n", TrainingOptions(family: .logistic, target: "y")).contains("infinite"))
        #expect(try message("a,y\n,1\n,0\n", TrainingOptions(family: .logistic, target: "y")).contains("no features"))
        #expect(try message("a,y\n", g).contains("no rows"))
        // An all-null feature beside a good one is left out and reported.
        let result = try Trainer.train(try Self.read("a,b,y\n,1,1\n,2,0\n,3,1\n,4,0\n"), options: TrainingOptions(family: .logistic, target: "y"))
        #expect(result.model.training.skippedColumns == ["a"] && result.model.features == ["b"])
    }
}

extension TrainingOptions {
    func with(_ change: (inout TrainingOptions) -> Void) -> TrainingOptions {
        var copy = self
        change(&copy)
        return copy
    }
}
