// Fuzz target filter-text. Filters, text form: Filter(text:), and what parses must print back to itself in both forms.
let fuzzTargetName = "filter-text"
