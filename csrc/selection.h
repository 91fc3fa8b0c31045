// The exact selection shared by select_labels and select_step (host code): given one neuron's
// candidates -- exact scores, formula histories, packed masks -- choose its best B labels.
//
// Order: the objective's score (AUROC: higher first in positive mode, lower in negative; with a length
// penalty, score - penalty * (length - 1)), compared exactly (objective.h);
// then shorter canonical length; then canonical text (formula_texts.h). With distinct, candidates of
// equal masks form one group whose representative is its shortest, first-in-text-order formula (equal
// masks have equal scores, so that is the group's first in the full order); without, equal texts do.
// Texts are built only where lengths tie: a group of hundreds of equal masks led by a shorter formula
// costs no text at all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "formula_texts.h"
#include "objective.h"

namespace invert_fast {

inline uint64_t hash_words(const int64_t* w, int64_t W) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < W; ++i) h ^= static_cast<uint64_t>(w[i]) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

// Buckets M candidates by neuron nd[m] (each in [0, D), checked by the caller): candidates of neuron d
// are order[start[d] .. start[d + 1]), in input order (a counting sort).
inline void bucket_by_neuron(const int64_t* nd, int64_t M, int64_t D, std::vector<int64_t>& start,
                             std::vector<int64_t>& order) {
  start.assign(static_cast<size_t>(D + 1), 0);
  order.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) ++start[nd[m] + 1];
  for (int64_t d = 0; d < D; ++d) start[d + 1] += start[d];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t m = 0; m < M; ++m) order[fill[nd[m]]++] = m;
}

// One neuron's candidates, in scratch arrays the selection reads: score[i], hist row i (T tokens),
// words row i (W words).
struct Candidates {
  std::vector<Score> score;
  std::vector<int64_t> hist, words;
  int64_t T = 0, W = 0;
  void resize(int64_t m, int64_t t, int64_t w) {
    T = t, W = w;
    score.resize(m);
    hist.resize(m * t);
    words.resize(m * w);
  }
};

// Reusable per-thread state of select_best.
struct SelectScratch {
  std::vector<int64_t> len, reps, group;
  std::vector<std::string> text;
  std::vector<char> has_text;
  std::vector<std::pair<uint64_t, int64_t>> keyed;
};

// Chooses up to B of the m candidates; writes their indices (best first) to out and lengths to out_len,
// returns how many were chosen. penalty > 0: scores are compared as score - penalty * (length - 1),
// exactly (compare_penalized).
inline int64_t select_best(int64_t m, const Candidates& c, const AtomTexts& atoms, double sign, int64_t B,
                           bool distinct, SelectScratch& s, int64_t* out, int64_t* out_len, double penalty = 0) {
  const int64_t T = c.T, W = c.W, k2 = atoms.count();
  s.len.assign(m, -1);
  s.text.assign(m, std::string());
  s.has_text.assign(m, 0);
  auto length_of = [&](int64_t i) {
    if (s.len[i] < 0) s.len[i] = canonical_length(c.hist.data() + i * T, T, k2);
    return s.len[i];
  };
  auto text_of = [&](int64_t i) -> const std::string& {
    if (!s.has_text[i]) {
      int64_t l = 0;
      s.text[i] = canonical_text(c.hist.data() + i * T, T, atoms, &l);
      s.len[i] = l;
      s.has_text[i] = 1;
    }
    return s.text[i];
  };
  auto shorter = [&](int64_t a, int64_t b) {  // (length, text) order
    const int64_t la = length_of(a), lb = length_of(b);
    if (la != lb) return la < lb;
    const std::string &ta = text_of(a), &tb = text_of(b);
    if (ta != tb) return ta < tb;
    return a < b;
  };
  auto better = [&](int64_t a, int64_t b) {
    const int cmp = penalty > 0
                        ? compare_penalized(c.score[a], length_of(a) - 1, c.score[b], length_of(b) - 1, penalty, sign)
                        : compare_scores(c.score[a], c.score[b], sign);
    return cmp != 0 ? cmp > 0 : shorter(a, b);
  };
  s.reps.clear();
  if (distinct) {
    // Sort by mask hash; a run of equal hashes splits into groups of exactly equal masks.
    s.keyed.resize(m);
    for (int64_t i = 0; i < m; ++i) s.keyed[i] = {hash_words(c.words.data() + i * W, W), i};
    std::sort(s.keyed.begin(), s.keyed.end());
    for (int64_t r0 = 0; r0 < m;) {
      int64_t r1 = r0 + 1;
      while (r1 < m && s.keyed[r1].first == s.keyed[r0].first) ++r1;
      for (int64_t u = r0; u < r1; ++u) {
        if (s.keyed[u].second < 0) continue;  // already in a group of this run
        const int64_t* w0 = c.words.data() + s.keyed[u].second * W;
        s.group.assign(1, s.keyed[u].second);
        for (int64_t v = u + 1; v < r1; ++v) {
          const int64_t j = s.keyed[v].second;
          if (j >= 0 && std::memcmp(c.words.data() + j * W, w0, static_cast<size_t>(W) * sizeof(int64_t)) == 0) {
            s.group.push_back(j);
            s.keyed[v].second = -1;
          }
        }
        int64_t minl = length_of(s.group[0]);
        for (const int64_t g : s.group) minl = std::min(minl, length_of(g));
        int64_t best = -1;
        for (const int64_t g : s.group) {
          if (length_of(g) == minl && (best < 0 || shorter(g, best))) best = g;
        }
        s.reps.push_back(best);
      }
      r0 = r1;
    }
  } else {
    std::unordered_map<std::string, int64_t> by_text;
    for (int64_t i = 0; i < m; ++i) {
      auto it = by_text.emplace(text_of(i), i);
      if (!it.second && i < it.first->second) it.first->second = i;
    }
    for (const auto& kv : by_text) s.reps.push_back(kv.second);
  }
  const int64_t take = std::min<int64_t>(B, static_cast<int64_t>(s.reps.size()));
  std::partial_sort(s.reps.begin(), s.reps.begin() + take, s.reps.end(), better);
  for (int64_t j = 0; j < take; ++j) {
    out[j] = s.reps[j];
    out_len[j] = length_of(s.reps[j]);
  }
  return take;
}

}  // namespace invert_fast
