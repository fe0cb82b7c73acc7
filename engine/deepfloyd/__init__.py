"""DeepFloyd IF stage I behind the engine's model contract: the adapter and sampling (``model``),
finding its weights and the errors a user can fix (``weights``), T5 prompt embeddings
(``embeddings``). diffusers and transformers are imported inside functions only."""
