/* C reference for the all-pairs Hamming histogram of 64-bit hashes (one thread).
 *
 * Compiled by bench_kernels.py with the system compiler and called through ctypes on the same
 * arrays as the numba kernel, so the two are timed in one run. Inner loop: XOR, popcount, and
 * four interleaved sub-histograms (consecutive increments of one bin otherwise serialise on
 * store-to-load forwarding); summed at the end.
 */
#include <stdint.h>
#include <string.h>

void all_pairs_hist64(const uint64_t *x, int64_t n, int64_t *hist /* 65 bins */)
{
    int64_t sub[4][65];
    memset(sub, 0, sizeof sub);
    for (int64_t i = 0; i < n; i++) {
        const uint64_t wi = x[i];
        int64_t j = i + 1;
        for (; j + 4 <= n; j += 4) {
            sub[0][__builtin_popcountll(wi ^ x[j])]++;
            sub[1][__builtin_popcountll(wi ^ x[j + 1])]++;
            sub[2][__builtin_popcountll(wi ^ x[j + 2])]++;
            sub[3][__builtin_popcountll(wi ^ x[j + 3])]++;
        }
        for (; j < n; j++)
            sub[0][__builtin_popcountll(wi ^ x[j])]++;
    }
    for (int b = 0; b < 65; b++)
        hist[b] = sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b];
}
