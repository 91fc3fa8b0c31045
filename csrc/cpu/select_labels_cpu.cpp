// CPU kernel of select_labels: candidates are bucketed by neuron; one task per neuron groups its
// candidates by mask (distinct) or text, keeps each group's shortest, first-in-text-order formula, and
// partially sorts the representatives by (exact score, length, text). Texts are built only where
// lengths tie, so a tie group of hundreds of equal masks led by a shorter formula costs no text.
#include <ATen/Parallel.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include "../exact_score.h"
#include "../formula_texts.h"
#include "../select_labels.h"

namespace invert_fast {
namespace {

uint64_t hash_words(const int64_t* w, int64_t W) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < W; ++i) {
    h ^= static_cast<uint64_t>(w[i]) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  }
  return h;
}

}  // namespace

SelectLabelsResult select_labels_cpu(const at::Tensor& neuron, const at::Tensor& s2, const at::Tensor& p,
                                     const at::Tensor& hist, const at::Tensor& words, const at::Tensor& atom_text,
                                     const at::Tensor& atom_offsets, int64_t n, double sign, int64_t B, bool distinct,
                                     int64_t D) {
  check_select_labels_input(neuron, s2, p, hist, words, distinct, B, D);
  check_atom_texts(atom_text, atom_offsets, "select_labels");
  const at::Tensor nc = neuron.contiguous(), sc = s2.contiguous(), pc = p.contiguous(), hc = hist.contiguous(),
                   wc = words.contiguous(), bytes = atom_text.contiguous(), offs = atom_offsets.contiguous();
  const AtomTexts atoms(bytes, offs);
  const int64_t M = nc.size(0), T = hc.size(1), W = wc.size(1), k2 = atoms.count();
  const int64_t* nd = nc.const_data_ptr<int64_t>();
  const int64_t* sp = sc.const_data_ptr<int64_t>();
  const int64_t* pp = pc.const_data_ptr<int64_t>();
  const int64_t* hp = hc.const_data_ptr<int64_t>();
  const int64_t* wp = wc.const_data_ptr<int64_t>();
  at::Tensor winners = at::full({D, B}, -1, nc.options());
  at::Tensor lengths = at::zeros({D, B}, nc.options());
  if (M == 0 || D == 0) return {winners, lengths};

  // Bucket the candidates by neuron (counting sort keeps their input order within a neuron).
  std::vector<int64_t> start(static_cast<size_t>(D + 1), 0), order(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    TORCH_CHECK_VALUE(nd[m] >= 0 && nd[m] < D, "select_labels: neuron must lie in [0, ", D, "), got ", nd[m],
                      " at candidate ", m);
    TORCH_CHECK_VALUE(pp[m] > 0 && pp[m] < n, "select_labels: candidate ", m, " has a mask of ", pp[m],
                      " samples; only masks with 0 < P < n = ", n, " have an AUC");
    ++start[nd[m] + 1];
  }
  for (int64_t d = 0; d < D; ++d) start[d + 1] += start[d];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t m = 0; m < M; ++m) order[fill[nd[m]]++] = m;
  }
  int64_t* win = winners.data_ptr<int64_t>();
  int64_t* lens = lengths.data_ptr<int64_t>();

  at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    std::vector<Score> score;
    std::vector<int64_t> len, idx, reps;
    std::vector<std::string> text;
    std::vector<char> has_text;
    std::vector<std::pair<uint64_t, int64_t>> keyed;  // (mask hash, candidate)
    std::vector<int64_t> group;
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t c0 = start[d], c1 = start[d + 1], m = c1 - c0;
      if (m == 0) continue;
      score.resize(m);
      len.assign(m, -1);
      text.assign(m, std::string());
      has_text.assign(m, 0);
      for (int64_t i = 0; i < m; ++i) {
        const int64_t c = order[c0 + i];
        score[i] = mask_auc(sp[c], pp[c], n);
      }
      auto length_of = [&](int64_t i) {
        if (len[i] < 0) len[i] = canonical_length(hp + order[c0 + i] * T, T, k2);
        return len[i];
      };
      auto text_of = [&](int64_t i) -> const std::string& {
        if (!has_text[i]) {
          int64_t l = 0;
          text[i] = canonical_text(hp + order[c0 + i] * T, T, atoms, &l);
          len[i] = l;
          has_text[i] = 1;
        }
        return text[i];
      };
      // (length, text) order, texts built only when lengths tie.
      auto shorter = [&](int64_t a, int64_t b) {
        const int64_t la = length_of(a), lb = length_of(b);
        if (la != lb) return la < lb;
        const std::string &ta = text_of(a), &tb = text_of(b);
        if (ta != tb) return ta < tb;
        return a < b;
      };
      auto better = [&](int64_t a, int64_t b) {
        const int c = compare_scores(score[a], score[b], sign);
        return c != 0 ? c > 0 : shorter(a, b);
      };
      // One representative per mask (distinct) or per text: the shortest, then the first in text order.
      // Equal masks have equal scores, so each group's representative is its first in the full order.
      reps.clear();
      if (distinct) {
        // Sort by mask hash; a run of equal hashes splits into groups of exactly equal masks (hash
        // collisions are rare, so a run is nearly always one group).
        keyed.resize(m);
        for (int64_t i = 0; i < m; ++i) keyed[i] = {hash_words(wp + order[c0 + i] * W, W), i};
        std::sort(keyed.begin(), keyed.end());
        for (int64_t r0 = 0; r0 < m;) {
          int64_t r1 = r0 + 1;
          while (r1 < m && keyed[r1].first == keyed[r0].first) ++r1;
          for (int64_t u = r0; u < r1; ++u) {
            if (keyed[u].second < 0) continue;  // already in a group of this run
            const int64_t* w0 = wp + order[c0 + keyed[u].second] * W;
            group.assign(1, keyed[u].second);
            for (int64_t v = u + 1; v < r1; ++v) {
              if (keyed[v].second >= 0 && std::memcmp(wp + order[c0 + keyed[v].second] * W, w0,
                                                      static_cast<size_t>(W) * sizeof(int64_t)) == 0) {
                group.push_back(keyed[v].second);
                keyed[v].second = -1;
              }
            }
            // The group's representative: shortest first (no text needed), then first in text order.
            int64_t minl = length_of(group[0]);
            for (const int64_t g : group) minl = std::min(minl, length_of(g));
            int64_t best = -1;
            for (const int64_t g : group) {
              if (length_of(g) == minl && (best < 0 || shorter(g, best))) best = g;
            }
            reps.push_back(best);
          }
          r0 = r1;
        }
      } else {
        std::unordered_map<std::string, int64_t> by_text;
        for (int64_t i = 0; i < m; ++i) {
          auto it = by_text.emplace(text_of(i), i);
          if (!it.second && i < it.first->second) it.first->second = i;
        }
        for (const auto& kv : by_text) reps.push_back(kv.second);
      }
      const int64_t take = std::min<int64_t>(B, static_cast<int64_t>(reps.size()));
      std::partial_sort(reps.begin(), reps.begin() + take, reps.end(), better);
      for (int64_t j = 0; j < take; ++j) {
        win[d * B + j] = order[c0 + reps[j]];
        lens[d * B + j] = length_of(reps[j]);
      }
    }
  });
  return {winners, lengths};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("select_labels", &select_labels_cpu); }

}  // namespace invert_fast
