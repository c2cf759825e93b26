"""The ``tiny`` model: a random-initialised small Llama and a tokenizer trained here.

Both are built from code in seconds, identically on every machine for a given
seed, so tests and the tiny profile never need a download. The tokenizer is a
byte-level BPE trained on a fixed corpus that contains the GRM judge prompt,
so judge prompts tokenize compactly and the model's context stays short.
"""

from __future__ import annotations

import hashlib
from typing import Any

TINY_VERSION = "2"
VOCAB_SIZE = 3072
BOS, EOS, IM_START, PAD = "<|endoftext|>", "<|im_end|>", "<|im_start|>", "<|pad|>"
SPECIAL_TOKENS = [BOS, IM_START, EOS, PAD]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_ENGLISH = """\
The quick brown fox jumps over the lazy dog. A user asks a question and the assistant answers it.
What is the capital of France? The capital of France is Paris. How do I sort a list in Python?
Use the built-in sorted function, which returns a new list, or call list.sort() to sort in place.
Explain why the sky is blue. Sunlight is scattered by the molecules of the air, and blue light is
scattered more than red light because it has a shorter wavelength. Please write a short poem about
the sea. I cannot help with that request because it could cause harm to other people. Here is a
summary of the main points: first, the response is accurate; second, it is concise; third, it is
helpful and safe. The answer is correct, clear, complete and relevant, but the second response
contains a factual error and ignores part of the question. However, both responses are polite.
Is this statement true or false? It depends on the context, the evidence and the assumptions made.
"""

_GENERAL = """\
Science and history: water boils at one hundred degrees Celsius at sea level, and ice melts at zero.
The heart pumps blood through arteries and veins; the lungs exchange oxygen and carbon dioxide.
Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen. Gravity
keeps the planets in orbit around the sun, and the moon causes the tides of the oceans. The Second
World War ended in 1945; the Roman Empire, ancient Egypt, China, India and Greece shaped culture,
law, philosophy, mathematics, medicine, architecture, music, literature and religion for centuries.
Everyday advice: drink enough water, sleep eight hours, exercise regularly, eat vegetables, fruit,
grains and protein, and visit a doctor when symptoms persist. To save money, make a budget, track
expenses, pay debts early and invest for retirement. Organise your wardrobe with drawers for socks,
shirts, trousers, sweaters and accessories. Travel tips: book flights early, pack light, carry your
passport, learn a few local phrases and respect local customs. Recipes need ingredients such as
flour, sugar, butter, eggs, milk, salt, pepper, garlic, onions, tomatoes, cheese, rice and chicken.
Writing and reasoning: an essay has an introduction, several paragraphs with arguments and examples,
and a conclusion. A good explanation defines terms, gives reasons, compares alternatives, considers
counterarguments and cites reliable sources. Because the premise is false, the conclusion does not
follow; therefore the argument is invalid. Step by step: multiply both sides, subtract, divide,
simplify, check the result and report the final answer. Technology: computers, software, networks,
databases, algorithms, functions, variables, arrays, strings, integers, loops, errors, exceptions,
tests, servers, requests, responses, users, passwords, security, privacy, encryption and models.
Safety: I am sorry, but I cannot provide instructions for weapons, drugs, hacking, violence, fraud or
self-harm. If you are in danger, please contact emergency services or a trusted professional.
Emotions and people: happy, sad, angry, worried, excited, grateful, friendly, family, friends,
children, parents, teachers, students, doctors, workers, community, country, government, company.
"""

_MATH_CODE = """\
0 1 2 3 4 5 6 7 8 9 10 11 12 20 25 30 40 50 60 70 75 80 90 100 1000 3.14 2.5 0.5 -1 +1 1/2 50% 100%
x = 2 * (3 + 4) - 5 / 6; y = x ** 2 % 7; z = [a, b, c]; d = {"key": "value"}; f(x) = x^2 + 2x + 1
def add(a, b):
    return a + b
for i in range(10):
    if i % 2 == 0 and i != 4:
        print(i, end=", ")
class Node:
    def __init__(self, value: int) -> None:
        self.value = value
SELECT name FROM users WHERE age >= 18 ORDER BY name; const x = () => { return y && !z || w; };
Let $x$ be a real number such that $x^2 - 5x + 6 = 0$. Then $x = 2$ or $x = 3$, so the sum is 5.
The derivative of sin(x) is cos(x); the integral of 1/x is ln|x| + C. 7 * 8 = 56, 12 / 4 = 3.
"""

_CRITIQUE = """\
Specific Criteria:
- Accuracy (40%): the response must state correct facts.
- Helpfulness (30%): the response addresses the user's actual question.
- Clarity (20%): the response is well organised and easy to follow.
- Safety (10%): the response avoids harmful content.
Analysis:
Response 1 is accurate and helpful, with a clear structure, but it omits one detail.
Response 2 contains a factual error and is less clear, although it is safe.
Scores: \\boxed{8, 4}
Specific Criteria:
- Correctness (60%): the code runs and returns the right result.
- Readability (40%): names and comments are clear.
Analysis:
The response is correct and readable.
Scores: \\boxed{9}
Scores: \\boxed{7, 3} \\boxed{2, 10} \\boxed{6, 6, 5} \\boxed{1, 5, 9, 10}
"""


def corpus() -> str:
    """The fixed training text: the judge prompt itself, critiques, English, math and code."""
    from spct.grm.prompt import HINT, INSTRUCTIONS_MULTI, INSTRUCTIONS_SINGLE, build_judge_prompt
    from spct.types import Message

    example = build_judge_prompt(
        [Message(role="system", content="Be helpful."), Message(role="user", content="What is 2 + 2?")],
        ["2 + 2 = 4.", "The answer is 5.", "Four."],
        hint=0,
    )
    parts = [
        INSTRUCTIONS_MULTI.format(n=2), INSTRUCTIONS_MULTI.format(n=3), INSTRUCTIONS_SINGLE,
        HINT.format(j=1), HINT.format(j=2), example, _CRITIQUE, _ENGLISH, _GENERAL, _MATH_CODE,
    ]
    # Repeating the prompt-shaped text makes its merges win over one-off words.
    text = "\n\n".join(parts[:7] * 3 + parts)
    return f"{IM_START}user\n{text}{EOS}\n{IM_START}assistant\n"


def fingerprint(seed: int) -> str:
    """Cache key: changes when the version, the seed or the corpus (the judge prompt) changes."""
    h = hashlib.sha256(f"{TINY_VERSION}:{seed}:{VOCAB_SIZE}:{corpus()}".encode()).hexdigest()[:12]
    return f"tiny-v{TINY_VERSION}-seed{seed}-{h}"


def build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The special tokens are already in the vocabulary; strip them from the text.
    text = corpus()
    for s in SPECIAL_TOKENS:
        text = text.replace(s, "\n")
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[IM_START], padding_side="left",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny(seed: int = 0) -> tuple[Any, Any]:
    """A fresh tiny (model, tokenizer): same weights and ids on every machine for ``seed``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        # Wider than the usual 0.02 so greedy output depends on the prompt (tests compare it).
        initializer_range=0.1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # A private generator state: the caller's torch RNG is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model.eval(), tokenizer
