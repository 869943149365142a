// Fuzz target filter-json. Filters, JSON form: Filter(jsonUTF8:), and what parses must print back to itself in both forms.
let fuzzTargetName = "filter-json"
