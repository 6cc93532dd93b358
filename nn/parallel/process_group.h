#pragma once
// The process group of data-parallel training, in the spirit of torch.distributed with its MPI
// backend: every process launched by mpirun is one rank of MPI_COMM_WORLD. Collectives work on
// whole contiguous f32/f64 tensors in place. Every wait is bounded: a collective that does not
// complete in time throws tg::Error naming it and the rank ("a rank may have died") instead of
// hanging. MPI is called only from the thread that initialised it (MPI_THREAD_FUNNELED).
#include <memory>
#include <string>

#include "autograd/tensor.h"

namespace tg::distributed {

/// Seconds a collective may take before tg::Error (torch.distributed's `timeout`).
inline constexpr double kDefaultTimeoutSeconds = 300.0;

/// True when this process was started by mpirun/mpiexec (Open MPI, MPICH/Hydra, or PMIx
/// launchers such as Slurm's srun): the environment names its rank.
bool launched_by_mpirun();

/// Joins the MPI job (MPI_Init_thread with MPI_THREAD_FUNNELED) if not done yet, as
/// torch.distributed.init_process_group(backend="mpi"). tg::Error when MPI cannot give
/// MPI_THREAD_FUNNELED, or after destroy_process_group() (MPI allows one init per process).
void init_process_group();
/// True between init_process_group() and destroy_process_group().
bool is_initialized();
/// Leaves the job (MPI_Finalize). Every rank must call it; skip it on an error path, so that
/// mpirun sees the rank fail and ends the job rather than waiting in MPI_Finalize.
void destroy_process_group();

/// This process's rank in [0, world size); 0 when no group is initialised.
int get_rank();
/// Number of ranks; 1 when no group is initialised.
int get_world_size();
/// Ranks on this machine (MPI_COMM_TYPE_SHARED); 1 when no group is initialised.
int get_local_world_size();

enum class ReduceOp { SUM, MAX, MIN };

/// An asynchronous collective in flight (torch.distributed.Work). Keep the tensor it works on
/// alive and untouched until it completes.
class Work {
 public:
  Work();
  ~Work();
  Work(Work&&) noexcept;
  Work& operator=(Work&&) noexcept;

  bool defined() const;
  /// Drives MPI's progress and says whether the collective has completed (MPI_Test).
  bool is_completed();
  /// Waits until it completes; tg::Error "<what> did not complete in N s on rank r of n: a rank
  /// may have died or stalled" after `timeout_s`.
  void wait(double timeout_s, const std::string& what);

 private:
  struct Request;
  std::unique_ptr<Request> request_;
  friend Work all_reduce_async(Tensor& tensor, ReduceOp op);
  friend Work broadcast_async(Tensor& tensor, int src);
  friend Work barrier_async();
};

/// Starts reducing `tensor` (f32 or f64, contiguous) over all ranks in place (MPI_Iallreduce).
Work all_reduce_async(Tensor& tensor, ReduceOp op = ReduceOp::SUM);
/// Starts copying rank `src`'s `tensor` into every rank's (MPI_Ibcast).
Work broadcast_async(Tensor& tensor, int src = 0);
Work barrier_async();

/// Blocking forms, bounded by `timeout_s`.
void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::SUM, double timeout_s = kDefaultTimeoutSeconds);
void broadcast(Tensor& tensor, int src = 0, double timeout_s = kDefaultTimeoutSeconds);
void barrier(double timeout_s = kDefaultTimeoutSeconds);

}  // namespace tg::distributed
