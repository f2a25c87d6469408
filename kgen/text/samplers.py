"""Next-token samplers for `kgen.text.decoding`: greedy, random, top-k, top-p (nucleus) and beam search.

Su Jianlin, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask" (https://kexue.fm/archives/6933) decodes UniLM with
beam search "as for any seq2seq"; bert4keras's `AutoRegressiveDecoder.random_sample` does top-k then top-p.
Top-p: Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration". Design after keras-hub's samplers:
small classes, one `get_next_token` each, the decoding loop elsewhere (`kgen.text.decoding.sample_loop`).

Random samplers draw with the Gumbel-max trick, `argmax(logits / T + G)` with `G = −log(−log U)` and U uniform:
an exact draw from `softmax(logits / T)` restricted to the kept tokens. `generate` draws the uniforms of every
step BEFORE the compiled decoding loop (`draw_noise`; a JAX loop body cannot advance a seed generator) and step
t uses `noise[t]`. Seeds follow `kgen.base`: `generate(..., seed=None)` draws from the sampler's own
`SeedGenerator` (built from the sampler's `seed`; one sampler used twice gives fresh draws, two samplers built
with the same int seed give the same tokens), and an int `generate(..., seed=s)` gives the same tokens on every
call and leaves the sampler's generator untouched.

The base class is `TokenSampler` (`kgen.text.Sampler` is its deprecated old name: kgen.diffusion and
kgen.gans have samplers of their own, of other things).

Shapes: `logits (batch, vocab)` → tokens int32 `(batch,)`.
"""

import keras
from keras import ops

from kgen._checks import check_int, check_positive_float
from kgen._deprecation import warn_deprecated
from kgen.backend.seeds import SeedGenerator
from kgen.base import seed_generator_for

_BLOCKED = -1e9  # a logit no kept token can lose to, finite so that sums and Gumbel noise stay finite


class TokenSampler:
    """Base class of the next-token samplers. Subclasses set `needs_noise` and may override `filter_logits`.

    Args:
        temperature: logits are divided by it before choosing (T → 0: greedy).
        seed: int seed of the sampler's `keras.random.SeedGenerator` (random samplers); None = a random seed.

    Example:
        >>> import keras, numpy as np
        >>> from kgen.text import TokenSampler
        >>> class NoPadGreedy(TokenSampler):  # a custom rule: never the pad token 0
        ...     def filter_logits(self, logits):
        ...         return keras.ops.where(keras.ops.arange(logits.shape[-1]) == 0, -1e9, logits)
        >>> NoPadGreedy().get_next_token(np.array([[3.0, 1.0, 2.0]], "float32"))  # [2]
    """

    needs_noise = False

    def __init__(self, temperature=1.0, seed=None):
        self.temperature = check_positive_float("temperature", temperature)
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self.seed_generator = SeedGenerator(seed) if self.needs_noise else None

    def draw_noise(self, steps, batch, vocab_size, seed=None):
        """Uniforms `(steps, batch, vocab)` in [1e-7, 1 − 1e-7] for the whole loop, or None.

        `seed=None` draws from the sampler's generator (it advances); an int gives the same draws every call."""
        if not self.needs_noise:
            return None
        uniform = keras.random.uniform((steps, batch, vocab_size), seed=seed_generator_for(self, seed))
        return ops.clip(uniform, 1e-7, 1.0 - 1e-7)

    def filter_logits(self, logits):
        """Logits with the tokens this sampler may not pick set to a large negative number."""
        return logits

    def get_next_token(self, logits, noise=None):
        """Tokens int32 `(batch,)` from `logits (batch, vocab)`; `noise` is one step of `draw_noise`."""
        logits = self.filter_logits(ops.cast(logits, "float32") / self.temperature)
        if self.needs_noise:
            logits = logits - ops.log(-ops.log(noise))
        return ops.cast(ops.argmax(logits, axis=-1), "int32")

    def get_config(self):
        return {"temperature": self.temperature, "seed": self.seed}


class GreedySampler(TokenSampler):
    """The most likely token (what `sampler="greedy"` gives).

    Example:
        >>> from kgen.text import GreedySampler, UniLM
        >>> model = UniLM(vocab_size=10, max_length=16)  # untrained: the tokens are arbitrary
        >>> model.generate([[1, 5, 6, 2]], max_new_tokens=4, sampler=GreedySampler())  # int32 (1, 4)
    """

    def __init__(self):
        super().__init__(temperature=1.0)

    def get_config(self):
        return {}


class RandomSampler(TokenSampler):
    """A draw from `softmax(logits / temperature)`.

    Example:
        >>> from kgen.text import RandomSampler, UniLM
        >>> model = UniLM(vocab_size=10, max_length=16)
        >>> model.generate([[1, 5, 6, 2]], max_new_tokens=4, sampler=RandomSampler(temperature=0.8), seed=0)
    """

    needs_noise = True


class TopKSampler(TokenSampler):
    """A draw among the `k` most likely tokens (ties with the k-th included). `k=1` is greedy.

    Args:
        k: number of tokens kept.
        temperature, seed: see `TokenSampler`.

    Example:
        >>> from kgen.text import TopKSampler, UniLM
        >>> model = UniLM(vocab_size=10, max_length=16)
        >>> model.generate([[1, 5, 6, 2]], max_new_tokens=4, sampler=TopKSampler(k=5), seed=0)
    """

    needs_noise = True

    def __init__(self, k=5, temperature=1.0, seed=None):
        super().__init__(temperature, seed)
        self.k = check_int("k", k, 1)

    def filter_logits(self, logits):
        kth = ops.top_k(logits, min(self.k, logits.shape[-1]), sorted=True)[0][:, -1:]
        return ops.where(logits >= kth, logits, _BLOCKED)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class TopPSampler(TokenSampler):
    """Nucleus sampling: a draw among the most likely tokens whose probabilities first reach `p`.

    The token that crosses `p` is kept (as bert4keras does by shifting the cumulative sum by one), so the most
    likely token is always kept and a tiny `p` is greedy. `k` optionally applies top-k first.

    Args:
        p: probability mass kept, in (0, 1].
        k: optional top-k applied before top-p.
        temperature, seed: see `TokenSampler`.

    Example:
        >>> from kgen.text import TopPSampler, UniLM
        >>> model = UniLM(vocab_size=10, max_length=16)
        >>> model.generate([[1, 5, 6, 2]], max_new_tokens=4, sampler=TopPSampler(p=0.9), seed=0)
    """

    needs_noise = True

    def __init__(self, p=0.9, k=None, temperature=1.0, seed=None):
        super().__init__(temperature, seed)
        self.p = check_positive_float("p", p)
        if self.p > 1.0:
            raise ValueError(f"`p` must be in (0, 1], got {p}")
        self.k = None if k is None else check_int("k", k, 1)

    def filter_logits(self, logits):
        if self.k is not None:
            logits = TopKSampler.filter_logits(self, logits)
        sorted_logits = ops.top_k(logits, logits.shape[-1], sorted=True)[0]
        probs = ops.softmax(sorted_logits, axis=-1)
        mass_before = ops.cumsum(probs, axis=-1) - probs
        kept = ops.where(mass_before < self.p, sorted_logits, ops.cast(float("inf"), sorted_logits.dtype))
        cutoff = ops.min(kept, axis=-1, keepdims=True)
        return ops.where(logits >= cutoff, logits, _BLOCKED)

    def get_config(self):
        return {**super().get_config(), "p": self.p, "k": self.k}


class BeamSampler:
    """Beam search with frozen finished beams and a length penalty.

    Each of `num_beams` hypotheses per example is extended by every token; the `num_beams` best candidates
    survive, ranked by `log p(y) / len(y) ** length_penalty` (len counts generated tokens up to and including
    the end token; `length_penalty = 0` ranks by log-probability). A finished beam is frozen: its only
    continuation is the pad token at log-probability 0, so its score and length stop changing while it
    competes with live beams. `num_beams = 1` is greedy decoding.

    Args:
        num_beams: beams per example.
        length_penalty: exponent α of the length normalisation (UniLM used α ≈ 0.6–1.0).
        return_all_beams: `generate` returns every beam `(batch, num_beams, steps)`, best first, and scores.

    Example:
        >>> from kgen.text import BeamSampler, UniLM
        >>> model = UniLM(vocab_size=10, max_length=16)
        >>> model.generate([[1, 5, 6, 2], [1, 7, 2]], max_new_tokens=4, sampler=BeamSampler(num_beams=3), end_id=2)
    """

    needs_noise = False
    seed_generator = None

    def __init__(self, num_beams=4, length_penalty=1.0, return_all_beams=False):
        self.num_beams = check_int("num_beams", num_beams, 1)
        self.length_penalty = float(length_penalty)
        if self.length_penalty < 0:
            raise ValueError(f"`length_penalty` must be >= 0, got {length_penalty}")
        self.return_all_beams = bool(return_all_beams)

    def normalized(self, scores, lengths):
        """Ranking score `scores / lengths ** length_penalty` (lengths floored at 1)."""
        lengths = ops.maximum(ops.cast(lengths, "float32"), 1.0)
        return scores / ops.power(lengths, self.length_penalty)

    def get_next_token(self, log_probs, scores, lengths, finished, pad_id):
        """One beam step.

        Args:
            log_probs: `(batch, beams, vocab)` next-token log-probabilities of every beam.
            scores: `(batch, beams)` summed log-probabilities so far.
            lengths: int `(batch, beams)` generated tokens so far (frozen once finished).
            finished: bool `(batch, beams)`.
            pad_id: the token a finished beam is extended with.

        Returns:
            `(parent (batch, beams), token (batch, beams), scores, lengths)` of the surviving candidates.
        """
        vocab = log_probs.shape[-1]
        frozen = ops.where(ops.arange(vocab) == pad_id, 0.0, _BLOCKED)
        log_probs = ops.where(finished[:, :, None], frozen[None, None, :], log_probs)
        candidates = scores[:, :, None] + log_probs
        new_lengths = lengths + ops.cast(ops.logical_not(finished), lengths.dtype)
        rank = self.normalized(candidates, new_lengths[:, :, None])
        batch = ops.shape(log_probs)[0]
        _, best = ops.top_k(ops.reshape(rank, (batch, -1)), self.num_beams, sorted=True)
        best = ops.cast(best, "int32")
        parent, token = best // vocab, best % vocab
        scores = ops.take_along_axis(ops.reshape(candidates, (batch, -1)), best, axis=1)
        return parent, token, scores, ops.take_along_axis(new_lengths, parent, axis=1)

    def get_config(self):
        return {"num_beams": self.num_beams, "length_penalty": self.length_penalty,
                "return_all_beams": self.return_all_beams}


def get_sampler(sampler):
    """A sampler instance from an instance or a name: "greedy", "random", "top_k", "top_p", "beam"."""
    names = {"greedy": GreedySampler, "random": RandomSampler, "top_k": TopKSampler, "top_p": TopPSampler,
             "beam": BeamSampler}
    if isinstance(sampler, (TokenSampler, BeamSampler)):
        return sampler
    if isinstance(sampler, str) and sampler in names:
        return names[sampler]()
    raise ValueError(f"`sampler` must be a TokenSampler/BeamSampler instance or one of {list(names)}, got {sampler!r}")


def deprecated_sampler_alias(old_name):
    """`TokenSampler`, with the warning for its former name `old_name` (served by the modules' `__getattr__`)."""
    warn_deprecated(f"`{old_name}`", "`kgen.text.TokenSampler` (the name `Sampler` also names kgen.diffusion's "
                    "samplers)", stacklevel=4)
    return TokenSampler


def __getattr__(name):
    if name == "Sampler":
        return deprecated_sampler_alias("kgen.text.samplers.Sampler")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
