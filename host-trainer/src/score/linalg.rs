//! Log-determinant of the NASWOT kernel, in `f64`.
//!
//! The kernel `K` (`n x n`, row-major) is a sum of Gram matrices of 0/1 codes, so it is
//! symmetric positive semi-definite with integer entries. [`logdet_psd`] factors it as
//! `K = L L^T` (Cholesky) and returns `log|det K| = 2 * sum_i ln L_ii`, never forming the
//! determinant itself (which overflows `f64` for NB201's kernels: entries ~1e6, n = 64). A
//! pivot below `PIVOT_RTOL * max_i K_ii` means `K` is singular to working precision, and
//! the answer is `None` (the caller applies the documented floor) rather than a huge
//! negative number made of rounding noise. [`logabsdet_lu`] is the general LU version
//! (partial pivoting) used to cross-check.
//!
//! [`min_eigenvalue`] is the smallest eigenvalue of a small symmetric matrix (MeCo's
//! channel correlations, at most 64 x 64) by cyclic Jacobi rotations.

/// Relative pivot below which a kernel counts as singular.
pub const PIVOT_RTOL: f64 = 1e-12;

/// `log det K` of a symmetric positive semi-definite `n x n` row-major matrix, or `None`
/// when it is singular (a pivot `<= PIVOT_RTOL * max diagonal`), not square, or not finite.
pub fn logdet_psd(k: &[f64], n: usize) -> Option<f64> {
    if n == 0 || k.len() != n * n || k.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let max_diag = (0..n).map(|i| k[i * n + i]).fold(0.0f64, f64::max);
    if max_diag <= 0.0 {
        return None;
    }
    let tol = PIVOT_RTOL * max_diag;
    let mut l = vec![0.0f64; n * n];
    let mut logdet = 0.0;
    for j in 0..n {
        let mut d = k[j * n + j];
        for p in 0..j {
            d -= l[j * n + p] * l[j * n + p];
        }
        if d.is_nan() || d <= tol {
            return None;
        }
        let ljj = d.sqrt();
        l[j * n + j] = ljj;
        logdet += 2.0 * ljj.ln();
        for i in j + 1..n {
            let mut s = k[i * n + j];
            for p in 0..j {
                s -= l[i * n + p] * l[j * n + p];
            }
            l[i * n + j] = s / ljj;
        }
    }
    logdet.is_finite().then_some(logdet)
}

/// `log|det A|` of a general `n x n` row-major matrix by LU with partial pivoting; `None`
/// when a pivot is exactly zero or the input is malformed.
pub fn logabsdet_lu(a: &[f64], n: usize) -> Option<f64> {
    if n == 0 || a.len() != n * n {
        return None;
    }
    let mut m = a.to_vec();
    let mut logdet = 0.0;
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs()))?;
        let piv = m[p * n + c];
        if piv == 0.0 || !piv.is_finite() {
            return None;
        }
        if p != c {
            for j in 0..n {
                m.swap(p * n + j, c * n + j);
            }
        }
        logdet += piv.abs().ln();
        for r in c + 1..n {
            let f = m[r * n + c] / piv;
            if f != 0.0 {
                for j in c..n {
                    m[r * n + j] -= f * m[c * n + j];
                }
            }
        }
    }
    Some(logdet)
}

/// The smallest eigenvalue of a symmetric `n x n` row-major matrix by cyclic Jacobi
/// rotations (accurate to rounding for the well-scaled matrices it is used on: every
/// eigenvalue of a correlation matrix lies in `[0, n]`); `None` for malformed or
/// non-finite input. Only the upper triangle is read.
pub fn min_eigenvalue(a: &[f64], n: usize) -> Option<f64> {
    if n == 0 || a.len() != n * n || a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut m = a.to_vec();
    for i in 0..n {
        for j in 0..i {
            m[i * n + j] = m[j * n + i];
        }
    }
    let norm: f64 = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    for _sweep in 0..64 {
        let off: f64 = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| m[i * n + j].powi(2)).sum();
        if off.sqrt() <= 1e-15 * norm.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // Rotation zeroing m[p][q]: t = tan(theta), the smaller root.
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
            }
        }
    }
    let min = (0..n).map(|i| m[i * n + i]).fold(f64::INFINITY, f64::min);
    min.is_finite().then_some(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_determinants_by_hand() {
        // [[4, 2], [2, 3]]: det = 12 - 4 = 8.
        let k = [4.0, 2.0, 2.0, 3.0];
        assert!((logdet_psd(&k, 2).unwrap() - 8f64.ln()).abs() < 1e-14);
        assert!((logabsdet_lu(&k, 2).unwrap() - 8f64.ln()).abs() < 1e-14);
        // [[2, -1, 0], [-1, 2, -1], [0, -1, 2]]: det = 2*(4-1) - (-1)*(-2) = 4.
        let k = [2.0, -1.0, 0.0, -1.0, 2.0, -1.0, 0.0, -1.0, 2.0];
        assert!((logdet_psd(&k, 3).unwrap() - 4f64.ln()).abs() < 1e-14);
        // LU of a non-symmetric matrix needing a row swap: [[0, 2], [3, 1]], det = -6.
        assert!((logabsdet_lu(&[0.0, 2.0, 3.0, 1.0], 2).unwrap() - 6f64.ln()).abs() < 1e-14);
    }

    #[test]
    fn hamming_kernel_of_three_codes() {
        // Codes over D = 4 units: a = 1100, b = 1010, c = 0111. K_ij = D - hamming(i, j):
        // h(a,b) = 2, h(a,c) = 3, h(b,c) = 3 -> K = [[4,2,1],[2,4,1],[1,1,4]],
        // det = 4*(16-1) - 2*(8-1) + 1*(2-4) = 60 - 14 - 2 = 44.
        let k = [4.0, 2.0, 1.0, 2.0, 4.0, 1.0, 1.0, 1.0, 4.0];
        assert!((logdet_psd(&k, 3).unwrap() - 44f64.ln()).abs() < 1e-14);
    }

    #[test]
    fn singular_kernels_are_reported_not_scored() {
        // All codes equal: K = D * ones, rank 1.
        let k = vec![7.0; 16];
        assert_eq!(logdet_psd(&k, 4), None);
        assert_eq!(logdet_psd(&[f64::NAN], 1), None);
        assert_eq!(logdet_psd(&[1.0, 2.0], 2), None);
        assert_eq!(logdet_psd(&[], 0), None);
        assert_eq!(logabsdet_lu(&[1.0, 2.0, 2.0, 4.0], 2), None);
    }

    #[test]
    fn large_kernels_do_not_overflow() {
        // 64 x 64 with 1e6 on the diagonal and 1e5 elsewhere: det = (d - o)^63 (d + 63 o).
        let (n, d, o) = (64usize, 1e6f64, 1e5f64);
        let k: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { d } else { o }).collect();
        let want = 63.0 * (d - o).ln() + (d + 63.0 * o).ln();
        let got = logdet_psd(&k, n).unwrap();
        assert!((got - want).abs() < 1e-9 * want.abs(), "{got} vs {want}");
        assert!((logabsdet_lu(&k, n).unwrap() - want).abs() < 1e-9 * want.abs());
    }

    #[test]
    fn min_eigenvalues_by_hand() {
        // [[2, 1], [1, 2]]: eigenvalues 1 and 3.
        assert!((min_eigenvalue(&[2.0, 1.0, 1.0, 2.0], 2).unwrap() - 1.0).abs() < 1e-14);
        // Tridiagonal [2, -1] of size n: eigenvalues 2 - 2 cos(k pi / (n + 1)).
        let n: usize = 12;
        let a: Vec<f64> = (0..n * n)
            .map(|i| match (i / n).abs_diff(i % n) {
                0 => 2.0,
                1 => -1.0,
                _ => 0.0,
            })
            .collect();
        let want = 2.0 - 2.0 * (std::f64::consts::PI / (n as f64 + 1.0)).cos();
        assert!((min_eigenvalue(&a, n).unwrap() - want).abs() < 1e-13);
        // A correlation matrix of rank 1 (every channel the same signal): smallest 0.
        let ones = vec![1.0; 64 * 64];
        assert!(min_eigenvalue(&ones, 64).unwrap().abs() < 1e-12);
        // Equicorrelated 64 x 64, rho = 0.3: smallest eigenvalue 1 - rho.
        let r: Vec<f64> = (0..64 * 64).map(|i| if i / 64 == i % 64 { 1.0 } else { 0.3 }).collect();
        assert!((min_eigenvalue(&r, 64).unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(min_eigenvalue(&[f64::NAN], 1), None);
        assert_eq!(min_eigenvalue(&[1.0, 2.0], 2), None);
    }
}
