import Foundation

/// Small inline SVG charts for the report: traces and rank plots as ArviZ draws them,
/// overlaid histograms and grouped bars. Every chart is a fixed-size `<svg>` string.
enum SVGPlot {
    /// One colour per chain (ArviZ's default cycle), repeated after ten.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    static let drawsColor = "#1f77b4", referenceColor = "#ff7f0e"

    static func format(_ v: Double) -> String {
        guard v.isFinite else { return "—" }
        let a = abs(v)
        if a != 0 && (a >= 1e5 || a < 1e-3) { return String(format: "%.2e", v) }
        return String(format: a >= 100 ? "%.0f" : (a >= 1 ? "%.2f" : "%.3f"), v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func frame(_ width: Int, _ height: Int, _ label: String, _ body: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"\(escape(label))\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\(body)</svg>"
    }

    static func text(_ x: Double, _ y: Double, _ s: String, anchor: String = "start", size: Int = 11, color: String = "#555") -> String {
        "<text x=\"\(Int(x))\" y=\"\(Int(y))\" font-size=\"\(size)\" fill=\"\(color)\" text-anchor=\"\(anchor)\">\(escape(s))</text>"
    }

    /// Every chain's values against the draw index, one coloured line each.
    /// `thin`: the draws kept are every thin-th, so the axis counts the chain's real draws.
    static func trace(_ chains: [[Double]], title: String, thin: Int = 1, width: Int = 460, height: Int = 170) -> String {
        let all = chains.flatMap { $0 }.filter(\.isFinite)
        guard let lo0 = all.min(), let hi0 = all.max() else { return "" }
        let pad = (hi0 - lo0) * 0.05 + (hi0 == lo0 ? 1 : 0)
        let lo = lo0 - pad, hi = hi0 + pad
        let left = 58.0, right = 8.0, top = 20.0, bottom = 22.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let n = chains.map(\.count).max() ?? 1
        // Axis labels: a value within a millionth of the range of zero reads 0.
        func axis(_ v: Double) -> String { format(abs(v) < 1e-6 * max(hi0 - lo0, 1e-12) ? 0 : v) }
        var body = "<rect x=\"\(Int(left))\" y=\"\(Int(top))\" width=\"\(Int(w))\" height=\"\(Int(h))\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
        for (c, values) in chains.enumerated() {
            let step = max(1, values.count / 600)
            let points = stride(from: 0, to: values.count, by: step).compactMap { i -> String? in
                guard values[i].isFinite else { return nil }
                let x = left + w * Double(i) / Double(max(n - 1, 1)), y = top + h * (hi - values[i]) / (hi - lo)
                return String(format: "%.1f,%.1f", x, y)
            }.joined(separator: " ")
            body += "<polyline fill=\"none\" stroke=\"\(palette[c % palette.count])\" stroke-width=\"0.8\" stroke-opacity=\"0.85\" points=\"\(points)\"/>"
        }
        body += text(left, 13, "\(title) — trace", size: 12, color: "#222")
        body += text(left - 4, top + 9, axis(hi0), anchor: "end") + text(left - 4, top + h, axis(lo0), anchor: "end")
        body += text(left, Double(height) - 6, "0") + text(left + w, Double(height) - 6, "draw \((n - 1) * thin)", anchor: "end")
        return frame(width, height, "trace of \(title)", body)
    }

    /// ArviZ's rank plot: the ranks of all draws pooled, a histogram per chain; a sample
    /// of p* gives flat bars near the dashed line (the uniform count).
    static func rank(_ chains: [[Double]], title: String, width: Int = 460, height: Int = 170, bins: Int = 20) -> String {
        let pooled = chains.enumerated().flatMap { c, v in v.map { (value: $0, chain: c) } }
        guard !pooled.isEmpty else { return "" }
        let order = pooled.indices.sorted { pooled[$0].value < pooled[$1].value }
        var counts = Array(repeating: Array(repeating: 0, count: bins), count: chains.count)
        for (r, i) in order.enumerated() { counts[pooled[i].chain][min(bins - 1, r * bins / pooled.count)] += 1 }
        let left = 48.0, right = 8.0, top = 20.0, bottom = 22.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let rowHeight = h / Double(chains.count)
        let expected = Double(pooled.count) / Double(chains.count * bins)
        let peak = max(Double(counts.flatMap { $0 }.max() ?? 1), expected * 1.5)
        var body = "<rect x=\"\(Int(left))\" y=\"\(Int(top))\" width=\"\(Int(w))\" height=\"\(Int(h))\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
        for (c, row) in counts.enumerated() {
            let base = top + rowHeight * Double(c + 1)
            for (b, k) in row.enumerated() {
                let bh = rowHeight * 0.9 * Double(k) / peak
                body += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>",
                               left + w * Double(b) / Double(bins) + 0.5, base - bh, w / Double(bins) - 1, bh, palette[c % palette.count])
            }
            let ey = base - rowHeight * 0.9 * expected / peak
            body += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#222\" stroke-dasharray=\"3 2\" stroke-width=\"0.7\"/>",
                           left, left + w, ey, ey)
            if chains.count <= 16 { body += text(left - 4, base - 2, "\(c)", anchor: "end", size: 9) }
        }
        body += text(left, 13, "\(title) — rank plot (chains top to bottom)", size: 12, color: "#222")
        body += text(left, Double(height) - 6, "lowest rank") + text(left + w, Double(height) - 6, "highest", anchor: "end")
        return frame(width, height, "rank plot of \(title)", body)
    }

    /// Overlaid densities (normalised histograms) of the draws and of the reference data.
    static func densities(_ draws: [Double], _ reference: [Double]?, title: String, width: Int = 300, height: Int = 150, bins: Int = 30) -> String {
        let values = (draws + (reference ?? [])).filter(\.isFinite)
        guard var lo = values.min(), var hi = values.max() else { return "" }
        if hi == lo { lo -= 0.5; hi += 0.5 }
        func histogram(_ v: [Double]) -> [Double] {
            var h = Array(repeating: 0.0, count: bins)
            for x in v where x.isFinite { h[min(bins - 1, max(0, Int((x - lo) / (hi - lo) * Double(bins))))] += 1 }
            let total = max(h.reduce(0, +), 1)
            return h.map { $0 / total }
        }
        let series = [(draws, drawsColor, "draws")] + (reference.map { [($0, referenceColor, "reference")] } ?? [])
        let hists = series.map { histogram($0.0) }
        let peak = hists.flatMap { $0 }.max() ?? 1
        let left = 10.0, right = 10.0, top = 20.0, bottom = 22.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        var body = "<rect x=\"\(Int(left))\" y=\"\(Int(top))\" width=\"\(Int(w))\" height=\"\(Int(h))\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
        for (s, hist) in zip(series, hists) {
            var path = String(format: "M%.1f,%.1f", left, top + h)
            for (b, v) in hist.enumerated() {
                let x0 = left + w * Double(b) / Double(bins), x1 = left + w * Double(b + 1) / Double(bins), y = top + h - h * v / peak
                path += String(format: " L%.1f,%.1f L%.1f,%.1f", x0, y, x1, y)
            }
            path += String(format: " L%.1f,%.1f Z", left + w, top + h)
            body += "<path d=\"\(path)\" fill=\"\(s.1)\" fill-opacity=\"0.25\" stroke=\"\(s.1)\" stroke-width=\"1.2\"/>"
        }
        body += text(left, 13, title, size: 11, color: "#222")
        body += text(left, Double(height) - 6, format(lo)) + text(left + w, Double(height) - 6, format(hi), anchor: "end")
        return frame(width, height, "density of \(title)", body)
    }

    /// Grouped bars: for each category, one bar per series (e.g. draws and reference).
    static func bars(_ categories: [String], _ series: [(name: String, values: [Double], color: String)], title: String,
                     width: Int = 460, height: Int = 170) -> String {
        let left = 36.0, right = 8.0, top = 20.0, bottom = 34.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let peak = max(series.flatMap(\.values).max() ?? 1, 1e-9)
        let group = w / Double(max(categories.count, 1)), bar = group * 0.8 / Double(max(series.count, 1))
        var body = "<line x1=\"\(Int(left))\" x2=\"\(Int(left + w))\" y1=\"\(Int(top + h))\" y2=\"\(Int(top + h))\" stroke=\"#999\"/>"
        for (i, name) in categories.enumerated() {
            for (s, entry) in series.enumerated() where i < entry.values.count {
                let v = entry.values[i], bh = h * v / peak
                body += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"><title>%@: %@</title></rect>",
                               left + group * Double(i) + group * 0.1 + bar * Double(s), top + h - bh, bar, bh, entry.color,
                               escape("\(entry.name), \(name)"), format(v))
            }
            body += text(left + group * (Double(i) + 0.5), top + h + 13, name, anchor: "middle", size: 10)
        }
        body += text(left - 4, top + 9, format(peak), anchor: "end") + text(left - 4, top + h, "0", anchor: "end")
        var lx = left + w
        for entry in series.reversed() {
            body += text(lx, Double(height) - 4, entry.name, anchor: "end", size: 10, color: entry.color)
            lx -= Double(entry.name.count * 6 + 14)
        }
        body += text(left, 13, title, size: 12, color: "#222")
        return frame(width, height, title, body)
    }
}
