// libFuzzer target: tg::data::read_listops_tsv on the input bytes, then encoding with the
// ListOps vocabulary (what `tapegrad encoder train` does with a TSV file).
#include "autograd/error.h"
#include "fuzz/fuzz_util.h"
#include "models/data/listops.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::TempFile file(data, size);
  try {
    static const tg::data::Vocab vocab = tg::data::listops_vocab();
    tg::data::encode_listops(tg::data::read_listops_tsv(file.path()), vocab, 64);
  } catch (const tg::Error&) {
  }
  return 0;
}
