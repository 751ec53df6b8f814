/** Files imported as text (vite's ?raw), e.g. the README that tests keep honest. */
declare module "*?raw" {
  const text: string;
  export default text;
}
