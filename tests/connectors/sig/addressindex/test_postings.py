from __future__ import annotations

from connectors.sig.addressindex.postings import PostingsBuilder, typo_keys


def test_postings_are_sorted_per_token_in_vocabulary_order() -> None:
    builder = PostingsBuilder()
    builder.add("name", ["rivoli", "rue"], 3)
    builder.add("name", ["rue", "cambon"], 1)
    builder.add("name", ["rue"], 3)
    builder.add("place", ["paris"], 1)
    vocab, new_id = builder.vocabulary()
    assert vocab == ["cambon", "paris", "rivoli", "rue"]
    offsets, postings = builder.csr("name", new_id)
    assert [postings[offsets[t] : offsets[t + 1]].tolist() for t in range(len(vocab))] == [[1], [], [3], [1, 3]]
    offsets, postings = builder.csr("place", new_id)
    assert [postings[offsets[t] : offsets[t + 1]].tolist() for t in range(len(vocab))] == [[], [1], [], []]


def test_typo_keys_cover_long_alphabetic_tokens_only() -> None:
    keys, tokens = typo_keys(["75001", "rue", "vendome"])
    assert len(keys) == len(tokens) == 7
    assert set(tokens.tolist()) == {2}
    assert "vndome" in keys and keys == sorted(keys)
