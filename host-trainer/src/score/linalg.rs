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
}
