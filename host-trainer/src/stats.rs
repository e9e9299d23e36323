//! Rank correlations: Spearman's rho (Pearson on mid-ranks, so ties are handled) and
//! Kendall's tau-b (Knight's `O(n log n)` algorithm with the tie corrections).
//!
//! `tau_b = (n_c - n_d) / sqrt((n0 - n1)(n0 - n2))` with `n0 = n(n-1)/2`, `n1` the pairs tied
//! in `x`, `n2` the pairs tied in `y`. Both functions return `None` for fewer than two
//! pairs, mismatched lengths, a non-finite value, or a constant variable.

/// Mid-ranks of `v` (1-based; tied values share the mean of their ranks).
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && v[idx[j]] == v[idx[i]] {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0; // mean of ranks i+1 ..= j
        for &k in &idx[i..j] {
            r[k] = mid;
        }
        i = j;
    }
    r
}

fn usable(x: &[f64], y: &[f64]) -> bool {
    x.len() == y.len() && x.len() >= 2 && x.iter().chain(y).all(|v| v.is_finite())
}

/// Pearson correlation.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if !usable(x, y) {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman's rank correlation.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if !usable(x, y) {
        return None;
    }
    pearson(&ranks(x), &ranks(y))
}

/// Kendall's tau-b in `O(n log n)`.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    if !usable(x, y) {
        return None;
    }
    let n = x.len();
    let pairs = |t: u64| t * t.saturating_sub(1) / 2;
    // Sort by (x, y).
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
    // Ties in x (n1) and joint ties (n3).
    let (mut n1, mut n3) = (0u64, 0u64);
    let (mut run_x, mut run_xy) = (1u64, 1u64);
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        if x[a] == x[b] {
            run_x += 1;
            if y[a] == y[b] {
                run_xy += 1;
            } else {
                n3 += pairs(run_xy);
                run_xy = 1;
            }
        } else {
            n1 += pairs(run_x);
            n3 += pairs(run_xy);
            run_x = 1;
            run_xy = 1;
        }
    }
    n1 += pairs(run_x);
    n3 += pairs(run_xy);
    // Sort the y sequence by merge sort, counting swaps (discordant pairs).
    let mut ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let mut buf = vec![0.0; n];
    let swaps = merge_count(&mut ys, &mut buf);
    // Ties in y (n2), from the now sorted ys.
    let mut n2 = 0u64;
    let mut run = 1u64;
    for w in ys.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            n2 += pairs(run);
            run = 1;
        }
    }
    n2 += pairs(run);
    let n0 = pairs(n as u64);
    let denom = ((n0 - n1) as f64 * (n0 - n2) as f64).sqrt();
    if denom == 0.0 {
        return None;
    }
    // n_c - n_d = n0 - n1 - n2 + n3 - 2 * swaps.
    let num = n0 as f64 - n1 as f64 - n2 as f64 + n3 as f64 - 2.0 * swaps as f64;
    Some(num / denom)
}

/// Stable merge sort of `v` returning the number of inversions (strictly greater before
/// smaller).
fn merge_count(v: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut swaps = {
        let (l, r) = v.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        merge_count(l, bl) + merge_count(r, br)
    };
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[j] < v[i] {
            buf[k] = v[j];
            swaps += (mid - i) as u64;
            j += 1;
        } else {
            buf[k] = v[i];
            i += 1;
        }
        k += 1;
    }
    buf[k..k + mid - i].copy_from_slice(&v[i..mid]);
    k += mid - i;
    buf[k..k + n - j].copy_from_slice(&v[j..n]);
    v.copy_from_slice(&buf[..n]);
    swaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_and_spearman_by_hand() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
        let rho = |a: &[f64], b: &[f64]| spearman(a, b).expect("defined");
        assert!((rho(&[1.0, 2.0, 3.0], &[10.0, 100.0, 1000.0]) - 1.0).abs() < 1e-12);
        assert!((rho(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // d = (0, -1, 1, 0): rho = 1 - 6*2 / (4*15) = 0.8 (no ties).
        assert!((rho(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None, "a constant variable");
    }

    /// Textbook O(n^2) tau-b.
    fn tau_b_naive(x: &[f64], y: &[f64]) -> Option<f64> {
        let n = x.len();
        let (mut c, mut d, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..n {
            for j in i + 1..n {
                let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
                if dx == 0.0 && dy == 0.0 {
                    continue;
                } else if dx == 0.0 {
                    tx += 1;
                } else if dy == 0.0 {
                    ty += 1;
                } else if (dx > 0.0) == (dy > 0.0) {
                    c += 1;
                } else {
                    d += 1;
                }
            }
        }
        let den = (((c + d + tx) * (c + d + ty)) as f64).sqrt();
        (den > 0.0).then(|| (c - d) as f64 / den)
    }

    #[test]
    fn hand_computed_values() {
        // Perfect agreement and reversal.
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(spearman(&x, &[10.0, 20.0, 30.0, 40.0]), Some(1.0));
        assert_eq!(kendall_tau_b(&x, &[4.0, 3.0, 2.0, 1.0]), Some(-1.0));
        // x = 1..5, y = (1, 3, 2, 5, 4): concordant 8, discordant 2 -> tau = 0.6;
        // rank differences d = (0, 1, 1, 1, 1): rho = 1 - 6*4/(5*24) = 0.8.
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        let x5 = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((kendall_tau_b(&x5, &y).unwrap() - 0.6).abs() < 1e-12);
        assert!((spearman(&x5, &y).unwrap() - 0.8).abs() < 1e-12);
        // Ties: mid-ranks.
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        // Degenerate inputs.
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(kendall_tau_b(&[1.0], &[1.0]), None);
        assert_eq!(kendall_tau_b(&[1.0, f64::NAN], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0]), None);
    }

    proptest! {
        #[test]
        fn tau_b_matches_the_naive_count(v in proptest::collection::vec((0u8..6, 0u8..6), 2..60)) {
            // Small integer ranges force many ties in both variables.
            let x: Vec<f64> = v.iter().map(|p| p.0 as f64).collect();
            let y: Vec<f64> = v.iter().map(|p| p.1 as f64).collect();
            match (kendall_tau_b(&x, &y), tau_b_naive(&x, &y)) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12, "{a} vs {b}"),
                (a, b) => prop_assert_eq!(a.is_none(), b.is_none()),
            }
        }
    }
}
