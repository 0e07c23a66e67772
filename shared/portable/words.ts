// Small rules for text shown to people, used by main (error words) and the window alike. Imports nothing.

/** "some text" -> "Some text." (our messages are lower-case clauses; what a person reads are sentences). */
export function sentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  const first = trimmed[0]!.toUpperCase() + trimmed.slice(1);
  return /[.!?…]['"’”)\]]*$/.test(first) ? first : `${first}.`;
}
