// Max pooling of a row of the stem (stem.cpp) over pixel-major rows, written once over Vec (vec.h) and compiled per
// ISA (isa.h).
#pragma once

namespace fusedfire_cpu::FF_ISA {

// dst[q·M + e] = the maximum over rows[r] (r < nr) and columns j in [q·stride, min(q·stride + kernel, W)) of
// rows[r][j·M + e], for q < Q, channels e < M: a NaN anywhere in a window is the window's maximum.
void max_pool_row(int64_t M, int64_t W, int64_t Q, int64_t kernel, int64_t stride, const float* const* rows,
                  int64_t nr, float* dst) {
  for (int64_t q = 0; q < Q; ++q) {
    const int64_t j0 = q * stride, j1 = std::min(j0 + kernel, W);
    for (int64_t e = 0; e < M; e += L) {
      const int n = int(std::min<int64_t>(L, M - e));
      auto at = [&](int64_t r, int64_t j) {
        const float* p = rows[r] + j * M + e;
        return n == L ? load(p) : load_n(p, n);
      };
      Vec m = at(0, j0);
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t j = r == 0 ? j0 + 1 : j0; j < j1; ++j) m = maximum(m, at(r, j));
      if (n == L) {
        store(dst + q * M + e, m);
      } else {
        store_n(dst + q * M + e, m, n);
      }
    }
  }
}

}  // namespace fusedfire_cpu::FF_ISA
