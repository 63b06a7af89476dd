// The one way an unknown thrown value becomes text: an Error's message, anything else as a string.
// Catch clauses receive `unknown`; a cast to Error would crash on a thrown string or undefined.

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  try {
    return String(error);
  } catch {
    return "an error that cannot be printed";
  }
}
