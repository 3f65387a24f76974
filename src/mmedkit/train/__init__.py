"""Training: continued pretraining on a corpus, then full or LoRA fine-tuning on a benchmark.

``config`` (YAML recipes), ``data`` (tokenisation cache, packing, the study's window layout),
``sft_data`` (benchmark items -> masked training samples), ``loop`` (the accelerate training loop),
``checkpoint`` (exact resume), ``tracking`` (logs), ``lora`` (peft adapters), ``cli`` (``mmed train``).
"""
