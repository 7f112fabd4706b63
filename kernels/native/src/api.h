// The C ABI shared by the native (CPU) and cuda libraries: the TypeScript backend calls these through
// koffi. Pointers are host pointers for `native`, device pointers for `cuda`; shapes are int32.
#pragma once
#include <cstdint>
#define TR_API extern "C" __attribute__((visibility("default")))

TR_API const char* tr_info();
TR_API void tr_set_num_threads(int n);
TR_API int tr_get_num_threads();

TR_API void tr_unary(int op, int dtype, const void* x, void* y, int64_t n, float alpha);
TR_API void tr_binary(int op, int dtype, const void* a, const void* b, void* out, int rank, const int32_t* out_shape,
                      const int32_t* a_strides, const int32_t* b_strides);
TR_API void tr_select(const uint8_t* cond, const void* a, const void* b, void* out, int64_t n, int elem_size);
TR_API void tr_cast(int src_dtype, int dst_dtype, const void* x, void* y, int64_t n);
TR_API void tr_fill(int dtype, void* y, int64_t n, double value);
TR_API void tr_reduce_mid(int op, const float* x, float* y, int64_t outer, int64_t red, int64_t inner);
TR_API void tr_reduce(int op, int dtype, const void* x, void* y, int64_t outer, int64_t inner);
TR_API void tr_transpose(int elem_size, const void* x, void* y, int rank, const int32_t* shape, const int32_t* perm);
TR_API void tr_slice(int elem_size, const void* x, void* y, int rank, const int32_t* shape, const int32_t* begin,
                     const int32_t* size, const int32_t* step);
TR_API void tr_pad(int elem_size, const void* x, void* y, int rank, const int32_t* in_shape, const int32_t* before,
                   const int32_t* out_shape, double constant, int dtype);
TR_API void tr_concat2d(int elem_size, const void* x, void* y, int64_t outer, int64_t inner_x, int64_t inner_y, int64_t offset);
TR_API void tr_tile(int elem_size, const void* x, void* y, int rank, const int32_t* in_shape, const int32_t* out_shape);
TR_API void tr_gather(int elem_size, const void* x, const int32_t* idx, void* y, int64_t batch, int64_t outer,
                      int64_t axis_size, int64_t inner, int64_t n_idx);
TR_API void tr_unsorted_segment_sum(int dtype, const void* x, const int32_t* seg, void* y, int64_t n, int64_t inner, int64_t num_segments);
TR_API void tr_one_hot(const int32_t* idx, void* y, int dtype, int64_t n, int64_t depth, double on, double off);
TR_API void tr_matmul(const float* a, const float* b, float* c, int64_t batch, int64_t a_batch, int64_t b_batch, int64_t m,
                      int64_t n, int64_t k, int trans_a, int trans_b);
TR_API void tr_gemm_builtin(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b);
TR_API void tr_softmax(const float* x, float* y, int64_t rows, int64_t cols);
TR_API void tr_layernorm_fwd(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                             int64_t rows, int64_t cols, float eps);
TR_API void tr_layernorm_bwd(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                             float* dx, float* dgamma, float* dbeta, int64_t rows, int64_t cols);
TR_API void tr_gelu_fwd(const float* x, float* y, int64_t n);
TR_API void tr_gelu_bwd(const float* dy, const float* x, float* dx, int64_t n);
TR_API void tr_cumsum(int dtype, const void* x, void* y, int64_t outer, int64_t len, int64_t inner, int exclusive, int reverse);
TR_API void tr_bsa_fwd(const float* q, const float* k, const float* v, const float* kb, float* out, float* lse, int B, int H,
                       int Lq, int Lk, int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx,
                       const uint8_t* full, const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh);
TR_API void tr_bsa_bwd(const float* q, const float* k, const float* v, const float* kb, const float* out, const float* lse,
                       const float* dout, float* dq, float* dk, float* dv, float* dkb, int B, int H, int Lq, int Lk, int D,
                       int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx, const uint8_t* full,
                       const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh);
// Block selection from per-(head, query block) scores [H, nQ, nQ] (causal: row i scores key blocks 0..i)
// into a causal BSR layout, on the device that holds the scores. mode 0: the diagonal block, then the
// top blocks by score, n per row; mode 1: the fewest top blocks whose non-negative scores reach gamma
// of the row's total (at least one), then the diagonal if missing. Ties go to the lower index; each
// row's blocks ascend. full[p] = 1 for complete blocks below the diagonal. flags (H*nQ*nQ bytes) and
// counts (H*nQ) are scratch.
TR_API void tr_select_blocks(const float* scores, int H, int nQ, int L, int B, int mode, int n, double gamma, int32_t* row_ptr,
                             int32_t* col_idx, uint8_t* full, uint8_t* flags, int32_t* counts);
// Decoding (kernels/decode): one query per (batch, head) row over a KV cache [B, H, cap, D] (fmt 0 fp32;
// fmt 1 bf16, cuda only, two values per float32 slot). tr_kv_write copies n new rows [B, H, n, D] (fp32)
// to cache positions pos.. . tr_decode_attn: q [B, H, D] -> out [B, H, D]; with pages null a row reads
// tokens [0, len); else the tokens of its counts[r] pages pages[r * maxp ..] (page tokens each) below
// tail_from[h], plus every token in [tail_from[h], len). vmax bounds any row's token count (the cuda
// split grid). tr_topk_rows: per row the k largest scores (ties to the lower index; -inf and NaN never),
// ascending indices in idx [rows, k] (-1 padded) and how many in counts. tr_page_minmax: per-page
// per-channel key min/max of pages [p0, p1) into [B, H, cap_pages, D]. tr_quest_scores: the bound
// sum_c max(q_c kmin_c, q_c kmax_c) per page (-inf from tail_page on); a head with head_sink[h] >= 0 is a
// streaming head: +inf for its first head_sink[h] pages, -inf after. tr_label_write / tr_label_scores:
// Double Sparsity's label cache [B, H, cap, r] of channels [H, r] and q's scores on it (-inf from
// tail_from on). tr_mustafar_compress: per-token magnitude pruning to `keep` of D channels into a bitmap
// [.., D/32] uint32 + values [.., keep]; tr_decode_attn_mustafar attends on those rows directly.
// tr_copy_bandwidth: GB/s (read + write) of a bytes-sized copy, best of reps.
TR_API void tr_kv_write(int fmt, const float* src, void* dst, int B, int H, int n, int D, int cap, int pos);
TR_API void tr_decode_attn(const float* q, const void* k, const void* v, float* out, int B, int H, int D, int cap, int len, int fmt,
                           float scale, const int32_t* pages, const int32_t* counts, const int32_t* tail_from, int maxp, int page,
                           int64_t vmax);
TR_API void tr_topk_rows(const float* scores, int rows, int n, int k, int32_t* idx, int32_t* counts);
TR_API void tr_page_minmax(const void* k, int fmt, float* kmin, float* kmax, int B, int H, int D, int cap, int page, int cap_pages,
                           int p0, int p1, int len);
TR_API void tr_quest_scores(const float* q, const float* kmin, const float* kmax, float* scores, int B, int H, int D, int cap_pages,
                            int n_pages, const int32_t* head_sink, int tail_page);
TR_API void tr_label_write(const float* src, float* label, const int32_t* channels, int B, int H, int n, int D, int r, int cap, int pos);
TR_API void tr_label_scores(const float* q, const float* label, const int32_t* channels, float* scores, int B, int H, int D, int r,
                            int cap, int len, int tail_from);
TR_API void tr_mustafar_compress(const float* src, uint32_t* bits, float* vals, int B, int H, int n, int D, int cap, int pos, int keep);
TR_API void tr_decode_attn_mustafar(const float* q, const uint32_t* kbits, const float* kvals, const uint32_t* vbits, const float* vvals,
                                    float* out, int B, int H, int D, int cap, int len, int keep_k, int keep_v, float scale);
TR_API double tr_copy_bandwidth(int64_t bytes, int reps);
