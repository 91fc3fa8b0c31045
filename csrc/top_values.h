// top_values: the `keep` largest activations of each unit over a stream of image chunks, exactly: the
// selection behind Network Dissection's top-quantile thresholds, without sorting all N * h * w values.
//
// Call it chunk by chunk, passing the previous result as `prev`; the values (not their positions) of
// each unit's top `keep` are what is kept, so ties are counted with their multiplicity.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <tuple>

namespace invert_fast {

// maps: [n, D, h, w] float32 or float64;  prev: [D, m] same dtype, m <= keep (m = 0 at the start)
// returns: values [D, min(keep, m + n * h * w)] the largest values of prev and the chunk, per unit,
//          descending; nan_image [D] int64 the first image of the chunk with a NaN of that unit, or -1
std::tuple<at::Tensor, at::Tensor> top_values_cpu(const at::Tensor& maps, const at::Tensor& prev, int64_t keep);
std::tuple<at::Tensor, at::Tensor> top_values_cuda(const at::Tensor& maps, const at::Tensor& prev, int64_t keep);

inline void check_top_values_input(const at::Tensor& maps, const at::Tensor& prev, int64_t keep) {
  TORCH_CHECK_VALUE(maps.dim() == 4, "top_values: maps must be [n, D, h, w], got shape ", maps.sizes());
  TORCH_CHECK_VALUE(prev.dim() == 2 && prev.size(0) == maps.size(1),
                    "top_values: prev must be [D, m] with D = ", maps.size(1), ", got shape ", prev.sizes());
  TORCH_CHECK_VALUE(keep >= 1 && prev.size(1) <= keep, "top_values: keep must be >= 1 and >= prev's ", prev.size(1),
                    " columns, got ", keep);
  TORCH_CHECK_TYPE(maps.scalar_type() == at::kFloat || maps.scalar_type() == at::kDouble,
                   "top_values: maps must be float32 or float64, got ", maps.scalar_type());
  TORCH_CHECK_TYPE(prev.scalar_type() == maps.scalar_type(), "top_values: prev must have the maps' dtype ",
                   maps.scalar_type(), ", got ", prev.scalar_type());
  TORCH_CHECK_VALUE(maps.device() == prev.device(), "top_values: maps and prev must be on one device, got ",
                    maps.device(), " and ", prev.device());
}

}  // namespace invert_fast
