"""The business rules of each numbered step: fetch (01), treat (02), local_sync (03), push (04)."""
