"""Training: continued pretraining on a corpus, then full or LoRA fine-tuning on a benchmark.

``config`` (settings and YAML recipes), ``shards`` (reading corpus sources), ``token_cache`` (tokenised
shards on disk), ``layouts`` (packed sequences, the study's windows), ``data`` (the pretraining set:
weights, held-out documents, epochs), ``sft_data`` (benchmark items -> masked training samples),
``batches`` (what each process reads at each step), ``loop`` (the accelerate training loop),
``checkpoint`` (exact resume), ``tracking`` (JSONL log, accelerate trackers), ``lora`` (peft adapters),
``cli`` (``mmed train``).
"""
