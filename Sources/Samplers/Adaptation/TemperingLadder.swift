import Foundation

/// Replica exchange (parallel tempering; Swendsen & Wang 1986, Geyer 1991): a chain carries
/// R replicas at inverse temperatures 1 = β₀ > β₁ > … > β_{R−1} = 1/T_max, each seeing
/// log p_β = β·(−G/τ) + log prior (the prior or log Jacobian is not tempered). After every
/// iteration neighbours (r, r + 1) swap their states with the exact Metropolis rule
///
///     log α = log p_{β_r}(x_{r+1}) + log p_{β_{r+1}}(x_r) − log p_{β_r}(x_r) − log p_{β_{r+1}}(x_{r+1}),
///
/// even pairs at even iterations and odd pairs at odd ones (the deterministic even–odd
/// scheme of Okabe et al. 2001; Syed et al. 2021). Only the β = 1 replica's draws are kept.
///
/// The ladder starts geometric in temperature. During warm-up it adapts towards even swap
/// rates (as Vousden, Farr & Mandel 2016): every `interval` iterations each gap in log T is
/// multiplied by exp(2·(Aᵣ − Ā)) — a pair that swaps more often than the average moves
/// apart — and the gaps are rescaled to keep T_max. It is frozen before the last metric
/// window, so step sizes and metrics are learnt on the final ladder.
public struct TemperingLadder: Sendable, Codable, Equatable {
    /// Gaps between neighbours in log temperature (R − 1 values summing to log T_max).
    public var gaps: [Double]
    /// Swap acceptance probabilities summed per pair since the last adaptation, and attempts.
    public var windowAcceptance: [Double]
    public var windowAttempts: [Int]
    /// The same after warm-up, for the run's summary.
    public var acceptance: [Double]
    public var attempts: [Int]

    public init(replicas: Int, maxTemperature: Double) {
        let r = max(replicas, 1)
        gaps = Array(repeating: log(maxTemperature) / Double(max(r - 1, 1)), count: r - 1)
        windowAcceptance = Array(repeating: 0, count: r - 1)
        windowAttempts = Array(repeating: 0, count: r - 1)
        acceptance = windowAcceptance
        attempts = windowAttempts
    }

    public var replicas: Int { gaps.count + 1 }

    /// β per replica, coldest (1) first.
    public var betas: [Double] {
        var b = [1.0], logT = 0.0
        for g in gaps {
            logT += g
            b.append(exp(-logT))
        }
        return b
    }

    /// Swap acceptance rate per neighbouring pair after warm-up (nil where none was tried).
    public var swapRates: [Double?] {
        zip(acceptance, attempts).map { $1 == 0 ? nil : $0 / Double($1) }
    }

    /// The pairs (r, r + 1) proposed at `iteration`.
    public func pairs(at iteration: Int) -> [Int] {
        Array(stride(from: iteration % 2, to: gaps.count, by: 2))
    }

    public mutating func record(pair r: Int, probability: Double, warmup: Bool) {
        if warmup {
            windowAcceptance[r] += probability
            windowAttempts[r] += 1
        } else {
            acceptance[r] += probability
            attempts[r] += 1
        }
    }

    /// Moves the gaps towards even swap rates; the sum (log T_max) stays.
    /// - Returns: whether the ladder changed (the replicas' cached densities are then stale).
    public mutating func adapt() -> Bool {
        guard gaps.count > 1, windowAttempts.allSatisfy({ $0 > 0 }) else { return false }
        let rates = zip(windowAcceptance, windowAttempts).map { $0 / Double($1) }
        let mean = rates.reduce(0, +) / Double(rates.count)
        let total = gaps.reduce(0, +)
        var next = zip(gaps, rates).map { $0 * exp(2 * ($1 - mean)) }
        let scale = total / next.reduce(0, +)
        next = next.map { $0 * scale }
        windowAcceptance = Array(repeating: 0, count: gaps.count)
        windowAttempts = Array(repeating: 0, count: gaps.count)
        guard next != gaps else { return false }
        gaps = next
        return true
    }
}

/// The warm-up iterations after which the ladder adapts: every `interval` until the last
/// metric window starts (half of warm-up without windows).
public struct LadderSchedule: Sendable, Equatable {
    public var interval: Int
    public var end: Int

    public init(schedule: WarmupSchedule, interval: Int = 50) {
        self.interval = interval
        end = schedule.lastWindowStart ?? schedule.warmup / 2
    }

    /// Whether the ladder adapts after iteration `it`.
    public func adaptsAfter(_ it: Int) -> Bool {
        it + 1 < end && (it + 1) % interval == 0
    }
}
