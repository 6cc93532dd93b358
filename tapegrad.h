#pragma once
// tapegrad: the engine and every op, in one include.
#include "autograd/autograd.h"
#include "ops/ops.h"
