//! `jsonl:PATH` / `jsonl:-`: syncscope's own JSON lines (one event per line, the model's field names).
