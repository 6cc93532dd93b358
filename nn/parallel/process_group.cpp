#include "nn/parallel/process_group.h"

#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "autograd/error.h"

namespace tg::distributed {
namespace {

bool initialized_here = false;
int rank = 0, world_size = 1, local_world_size = 1;

void check_initialized(const char* what) {
  TG_CHECK(initialized_here, "distributed::{}: no process group; call init_process_group() first (under mpirun)",
           what);
}

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, size_t(len));
}

void check_mpi(int code, const char* call) {
  if (code != MPI_SUCCESS) fail("distributed: {} failed on rank {}: {}", call, rank, mpi_error_string(code));
}

MPI_Datatype mpi_type(const Tensor& t, const char* what) {
  TG_CHECK(t.defined(), "distributed::{}: the tensor is undefined", what);
  switch (t.dtype()) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    default: fail("distributed::{}: tensors of {} are not supported (f32 or f64)", what, t.dtype());
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::SUM: return MPI_SUM;
    case ReduceOp::MAX: return MPI_MAX;
    case ReduceOp::MIN: return MPI_MIN;
  }
  return MPI_SUM;
}

}  // namespace

struct Work::Request {
  MPI_Request handle = MPI_REQUEST_NULL;
  Tensor buffer;  // kept alive while MPI may still write into it
};

bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

void init_process_group() {
  if (initialized_here) return;
  int already = 0, finalized = 0;
  MPI_Finalized(&finalized);
  TG_CHECK(!finalized, "distributed::init_process_group: MPI was finalized by destroy_process_group(); a process can "
                       "join the job only once");
  MPI_Initialized(&already);
  int provided = MPI_THREAD_SINGLE;
  if (already)
    MPI_Query_thread(&provided);
  else
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  TG_CHECK(provided >= MPI_THREAD_FUNNELED,
           "distributed: MPI gives thread support level {}, tapegrad needs MPI_THREAD_FUNNELED (TBB threads run "
           "between MPI calls of the main thread)",
           provided);
  // Errors come back as codes (named in tg::Error) instead of aborting the job inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm local;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local),
            "MPI_Comm_split_type");
  MPI_Comm_size(local, &local_world_size);
  MPI_Comm_free(&local);
  initialized_here = true;
}

bool is_initialized() { return initialized_here; }

void destroy_process_group() {
  if (!initialized_here) return;
  initialized_here = false;
  rank = 0, world_size = 1, local_world_size = 1;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

int get_rank() { return rank; }
int get_world_size() { return world_size; }
int get_local_world_size() { return local_world_size; }

Work::Work() = default;
// An abandoned request (an error path, the process about to exit) is left to MPI: freeing an
// active collective's request is not allowed, and its buffer lives as long as the request.
Work::~Work() {
  if (request_ && request_->handle != MPI_REQUEST_NULL) (void)request_.release();
}
Work::Work(Work&&) noexcept = default;
Work& Work::operator=(Work&&) noexcept = default;

bool Work::defined() const { return request_ != nullptr; }

bool Work::is_completed() {
  if (!request_ || request_->handle == MPI_REQUEST_NULL) return true;
  int done = 0;
  check_mpi(MPI_Test(&request_->handle, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

void Work::wait(double timeout_s, const std::string& what) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  // Spin first (a collective usually completes within microseconds to milliseconds), then
  // poll with short sleeps so that a waiting rank leaves the core to others.
  for (int spins = 0; !is_completed(); ++spins) {
    if (clock::now() > deadline)
      fail("distributed: {} did not complete in {} s on rank {} of {}: a rank may have died or stalled", what,
           timeout_s, rank, world_size);
    if (spins > 2000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

Work all_reduce_async(Tensor& t, ReduceOp op) {
  check_initialized("all_reduce");
  MPI_Datatype type = mpi_type(t, "all_reduce");
  TG_CHECK(t.numel() <= int64_t(INT32_MAX), "distributed::all_reduce: {} elements exceed MPI's int count",
           t.numel());
  Work w;
  w.request_ = std::make_unique<Work::Request>();
  w.request_->buffer = t;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), int(t.numel()), type, mpi_op(op), MPI_COMM_WORLD,
                           &w.request_->handle),
            "MPI_Iallreduce");
  return w;
}

Work broadcast_async(Tensor& t, int src) {
  check_initialized("broadcast");
  MPI_Datatype type = mpi_type(t, "broadcast");
  TG_CHECK(src >= 0 && src < world_size, "distributed::broadcast: source rank {} outside [0, {})", src, world_size);
  TG_CHECK(t.numel() <= int64_t(INT32_MAX), "distributed::broadcast: {} elements exceed MPI's int count", t.numel());
  Work w;
  w.request_ = std::make_unique<Work::Request>();
  w.request_->buffer = t;
  check_mpi(MPI_Ibcast(t.raw_data(), int(t.numel()), type, src, MPI_COMM_WORLD, &w.request_->handle), "MPI_Ibcast");
  return w;
}

Work barrier_async() {
  check_initialized("barrier");
  Work w;
  w.request_ = std::make_unique<Work::Request>();
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &w.request_->handle), "MPI_Ibarrier");
  return w;
}

void all_reduce(Tensor& t, ReduceOp op, double timeout_s) { all_reduce_async(t, op).wait(timeout_s, "all_reduce"); }
void broadcast(Tensor& t, int src, double timeout_s) { broadcast_async(t, src).wait(timeout_s, "broadcast"); }
void barrier(double timeout_s) { barrier_async().wait(timeout_s, "barrier"); }

}  // namespace tg::distributed
