"""Storage encodings and Huffman coding on hand-countable tensors."""

from __future__ import annotations

import numpy as np

from simulator.estimate.storage import _relative_gaps, stored_size
from simulator.graph import Codebook, Encoding, Tensor
from simulator.huffman import code_lengths, coded_bits


def test_huffman_code_lengths_of_the_textbook_example():
    # CLRS 16.3: a:45 b:13 c:12 d:16 e:9 f:5 -> a 1 bit, b c d 3 bits, e f 4 bits
    lengths = code_lengths({0: 45, 1: 13, 2: 12, 3: 16, 4: 9, 5: 5})
    assert lengths == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    assert coded_bits(np.array([7, 7, 7])) == (3, 1)  # one symbol still costs a bit each


def test_relative_gaps_insert_fillers():
    # 3-bit gaps reach at most 8 positions: 0 -> 3 -> 20 needs two fillers for the gap of 17
    gaps, filler = _relative_gaps(np.array([0, 3, 20]), 3)
    assert gaps.tolist() == [1, 3, 8, 8, 1]
    assert filler.tolist() == [False, False, True, True, False]


def _weight(mask_positions, size=32, codebook=None):
    mask = np.zeros(size, bool)
    mask[mask_positions] = True
    data = np.where(mask, 1.0, 0.0).astype(np.float32).reshape(4, 8)
    return Tensor.from_array("w", data, mask=mask.reshape(4, 8), codebook=codebook)


def test_dense_csr_bitmask_sizes():
    t = _weight([0, 5, 31])
    assert stored_size(t, 8, Encoding("dense")).total_bytes == 32
    # csr: 3 values x (8 + 5 index bits) + 5 int32 row pointers
    assert stored_size(t, 8, Encoding("csr", 5)).total_bytes == (3 * 13 + 5 * 32 + 7) // 8
    # bitmask: 32 bits + 3 x 8
    assert stored_size(t, 8, Encoding("bitmask")).total_bytes == (32 + 24) // 8


def test_csr_relative_counts_fillers_and_codebook():
    indices = np.zeros((4, 8), np.int64)
    t = _weight([0, 5, 31], codebook=Codebook(np.array([0.0, 1.0, 2.0, 3.0], np.float32), indices))
    size = stored_size(t, 32, Encoding("csr-relative", 4))
    # gaps 1, 5, 26 with 4-bit gaps (max 16): 26 = 16 + 10 -> one filler, 4 entries
    # each entry: 2-bit codebook index + 4-bit gap; plus 4 float32 centroids
    assert (size.value_bits, size.index_bits, size.table_bits) == (4 * 2, 4 * 4, 4 * 32)


def test_huffman_shrinks_a_skewed_stream():
    indices = np.zeros((4, 8), np.int64)
    indices[0, 0] = 3
    t = Tensor.from_array(
        "w", np.zeros((4, 8), np.float32), codebook=Codebook(np.arange(16, dtype=np.float32), indices)
    )
    plain = stored_size(t, 32, Encoding("dense"))
    coded = stored_size(t, 32, Encoding("dense", huffman=True))
    assert plain.value_bits == 32 * 4
    # two symbols (31 zeros, one 3): one bit each
    assert coded.value_bits == 32 and coded.plain_bits == plain.plain_bits
