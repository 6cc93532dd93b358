#pragma once
// The engine in one include: Tensor, the tape, backward, gradcheck, memory and randomness.
#include "autograd/allocator.h"
#include "autograd/anomaly.h"
#include "autograd/backward.h"
#include "autograd/checkpoint.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/random.h"
#include "autograd/tape.h"
#include "autograd/tensor.h"
#include "ops/kernels/parallel.h"
