//! SHA-256 in plain Rust (FIPS 180-4), for the small inputs a hook hashes on its common path.
//!
//! The `sha2` crate asks the CPU for SHA extensions by `cpuid` at its first use in a process: a
//! VM exit each on the benchmark machine, ≈ 20 µs per process (BENCHMARKS.md), more than this
//! code takes for a few kilobytes. [`crate::config::lastgood::sha256_hex`] uses it up to
//! [`SMALL`] bytes and `sha2` (with the extensions) beyond; the canary's bucket uses it for the
//! session id. Tests hold it equal to `sha2`.

/// Inputs up to this many bytes are hashed here.
pub const SMALL: usize = 4096;

/// The round constants.
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// The initial hash value.
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The SHA-256 digest of `data`.
#[must_use]
#[expect(
    clippy::many_single_char_names,
    reason = "the standard's names: a–h, w"
)]
pub fn small(data: &[u8]) -> [u8; 32] {
    let mut h = H0;
    // The message, a 0x80 byte, zeros to 56 mod 64, the bit length in 8 bytes big-endian.
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    /// Every padding case (lengths around the 55/56/64-byte block edges, many blocks) and
    /// generated inputs agree with the `sha2` crate.
    #[test]
    #[expect(clippy::cast_possible_truncation, reason = "generated test bytes")]
    fn agrees_with_sha2() {
        let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
        let mut inputs: Vec<Vec<u8>> =
            [0usize, 1, 3, 36, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128]
                .iter()
                .chain(&[1000, 4095, 4096, 4097])
                .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
                .collect();
        for _ in 0..500 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = (rng % 300) as usize;
            inputs.push((0..len).map(|i| (rng >> (i % 56)) as u8).collect());
        }
        for input in &inputs {
            let expected: [u8; 32] = sha2::Sha256::digest(input).into();
            assert_eq!(
                super::small(input),
                expected,
                "input of {} bytes",
                input.len()
            );
        }
    }
}
