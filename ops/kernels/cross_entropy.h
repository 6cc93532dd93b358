#pragma once
// Cross-entropy of logits [N, C] against class ids target [N], fused with log-softmax: the
// forward computes each row's exponentials once, for its log-sum-exp and, when a backward will
// follow, its softmax probs [N, C] (what log_softmax saves in PyTorch, a tensor of the logits'
// size); the backward then scales probs in one pass instead of computing them again.
// Rows run in parallel; the total is summed serially in row order (thread-count independent).
#include <cstdint>

namespace tg::kernels {

/// lse [N] = logsumexp of each row (max subtracted); probs [N, C] (skipped when null) =
/// softmax of each row; loss [N] (skipped when null) = lse[i] - logits[i, target[i]], or 0
/// where target[i] == ignore_index. Returns the sum of the losses of the rows not ignored,
/// accumulated in double. Targets must be in [0, C) or ignore_index.
template <class T>
double cross_entropy_forward(const T* logits, const int64_t* target, T* lse, T* probs, T* loss,
                             int64_t N, int64_t C, int64_t ignore_index);

/// dlogits [N, C] = g_i * (probs[i] - onehot(target[i])) with g_i = scale *
/// dloss[i * dloss_stride] (stride 0: one gradient for all rows); 0 on ignored rows.
template <class T>
void cross_entropy_backward(const T* probs, const int64_t* target, const T* dloss,
                            int64_t dloss_stride, T scale, T* dlogits, int64_t N, int64_t C,
                            int64_t ignore_index);

}  // namespace tg::kernels
